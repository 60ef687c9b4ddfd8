"""The targets every benchmark is measured against (shared by the runs and the report)."""

from __future__ import annotations

# Live end to end (bench/live.py): events/s sustained, publish→commit p99.
TARGET_RATE = 5_000
TARGET_P99_MS = 200.0
# The simulator (bench/simulator.py): devices on one core within this much memory.
TARGET_DEVICES = 5_000
TARGET_CORES = 1.0
TARGET_MB = 100.0
# The API (bench/api.py): p95 of every query.
TARGET_P95_MS = 50.0
# Ingest drain (bench/drain.py): the backend against a bare paho client.
BACKEND_TARGET_RATIO = 0.6
