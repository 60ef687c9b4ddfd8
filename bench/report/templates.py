"""The fixed text of docs/benchmarks.md as string.Template strings ($-placeholders for numbers)."""

from __future__ import annotations

from string import Template

PAGE = Template(
    "\n".join(
        [
            "# Benchmarks",
            "",
            "Performance and scale-out of Lijia Street on one small machine: simulated devices → "
            "Mosquitto → backend (ingest, SQLite) → API. These are not tests: they run by their "
            "own command, start real processes on free local ports, and print numbers. Every "
            "figure stands next to a baseline measured in the same run, as a ratio. What these "
            "figures mean for running the street past one machine (a clustered broker, "
            "PostgreSQL, replicas per broker): [scaling.md](scaling.md).",
            "",
            "Run: $date, $mode, $minutes min in all. Command (from a clone, after "
            "`bash scripts/up.sh`-style install; needs Debian's `mosquitto` and "
            "`mosquitto-clients`):",
            "",
            "```",
            "bash bench/run.sh            # = .venv/bin/python -m bench   (full, writes this file)",
            "bash bench/run.sh --quick    # smoke run, a few minutes, writes to a temp folder",
            "bash bench/run.sh --only drain,api",
            "```",
            "",
            "This run: `$command`.",
            "",
            "Machine:",
            "",
            "$machine",
            "",
            "Other engineers' test suites ran on the same two cores during parts of this run; the "
            "last row says how much CPU they took during each benchmark (system-wide busy cores "
            "minus the benchmark's own process tree). Figures from a benchmark with a high value "
            "there are pessimistic.",
            "",
            "![Benchmarks chart]($png)",
            "",
            "## Results against the targets",
            "",
            "$headlines",
            "",
            "$analysis",
            "",
            "## 1. Ingest drain",
            "",
            "$drain",
            "",
            "## 2. Live end to end",
            "",
            "$live",
            "",
            "## 3. The simulator",
            "",
            "$simulator",
            "",
            "## 4. The embedded broker",
            "",
            "$embedded",
            "",
            "## 5. The API at 1,000,000 events",
            "",
            "$api",
            "",
        ]
    )
)

DRAIN = Template(
    "\n".join(
        [
            "$n valid envelopes (mean $payload_bytes bytes) from $devices device clients (the "
            "first device of each kind, own credentials), in the order the street produces them, "
            "queued at QoS 1 for the consumer's persistent session while it was away; then the "
            "consumer starts and drains. Each consumer gets its own identical queue. Rates are "
            "steady-state: first stored (or received) message to the last (the backend's: first "
            "`/health` poll with `stored > 0` to `stored = N`, polled every 0.1 s). The backend "
            "needed $wall_s s from process start ($rate_incl_startup msg/s including start-up); "
            "it stored $stored rows, $duplicates duplicates, $dead_lettered dead letters.",
            "",
            "Each queue is drained twice over: with the broker's autosave once a second "
            "(`autosave_on_changes false`, `autosave_interval 1`: the broker is not the "
            "bottleneck, so the consumers' own speeds show; the headline) and with the shipped "
            "config (what the product gets today: the broker rewrites its persistence file as the "
            "queue shrinks and holds every consumer back).",
            "",
            "$table",
            "",
            "How the queue was filled: the shipped `mosquitto.conf` (`autosave_on_changes true`, "
            "`autosave_interval 1`) rewrites the whole persistence file after every queued "
            "message. Queueing the first $queued messages for an offline session ran at "
            "**$queued_shipped msg/s** with the shipped config against $queued_prefill msg/s "
            "with `autosave_on_changes false` ($queued_ratio), and it slows further as the queue "
            "grows (each save writes the whole queue). So the queues were filled with "
            "`autosave_on_changes false`, the broker stopped with SIGTERM (which saves) and "
            "restarted with the shipped config: every drain above ran on the shipped config.",
        ]
    )
)

LIVE = "\n".join(
    [
        "The load: the fleet's own device sessions (`devices/session.py`, one paho client and "
        "one credential per device, all on one `MqttLoop`, connected in waves as FleetRunner "
        "does), publishing the street's own mix of emissions (`devices/street.py`: events, "
        "telemetry and journeys of every kind, about half telemetry) at a fixed total rate "
        "(`bench/live_driver.py`); each envelope's `ts` is the wall-clock instant of publishing. "
        "The backend is the real `python -m backend` on SQLite with the scaled fleet "
        "provisioned.",
        "",
        "Lost: the event ids the driver sent against the ids found in the `event` table (after "
        "up to 30-60 s of grace). Sustained: the driver offered ≥ 97 % of the rate, nothing was "
        "lost, and when the load stopped the store was at most 1 s of traffic behind.",
        "",
        "Latency (publish → commit): an observer thread in the benchmark process polls the "
        "backend's SQLite file read-only (WAL) every 10 ms for rows with a higher `id` and "
        "notes when each event id first became visible; latency = that instant − the envelope's "
        "`ts`. This adds nothing to the backend, measures what a reader can see (a committed "
        "row), and overstates the commit time by at most one poll interval plus one query "
        "(≈ 5 ms on average). The SSE stream (`GET /stream`) was not used: it carries only the "
        "events channel (not telemetry), drops the oldest items for a slow client, and adds the "
        "API's own event-loop and HTTP delays to what is measured. The baseline replaces the "
        "backend with a bare paho subscriber (manual ack, nothing else) on a fresh broker of the "
        "same config, timestamping arrival.",
    ]
)

SIMULATOR = Template(
    "Each size is a fresh Mosquitto (shipped config) and a fresh worker process "
    "(`bench/sim_worker.py`) running the product's `FleetRunner` on `Fleet.scaled(n)` "
    "(the default mix), with a credential per device (`adapters.credentials.generate`) and "
    "`RLIMIT_NOFILE` raised for the worker and the broker. The simulated clock starts on a "
    "Monday 08:00 in Chongqing. x$speed ($speed simulated seconds per real second) makes the "
    "street publish about one message per device per second, the load at which the one-core "
    "target for 5,000 devices is measured; x1 is the street in real time. CPU and publish rate are "
    "averaged over $hold_s s after all devices are online; memory is the worker's RSS minus "
    "its RSS after the imports, divided by devices (so it includes the fleet file, the "
    "credentials, behaviours, sessions, paho clients). Baseline: the same number of bare "
    "paho clients on the same `MqttLoop`, connected and idle. `broker` counts include the "
    "benchmark's own `$$SYS` watcher."
)

EMBEDDED = Template(
    "One device client publishes valid envelopes at QoS 1 (in-flight window 100) at a "
    "fixed rate for $seconds s, one subscriber (user `backend`, QoS 1) receives them "
    "(`bench/rtt_worker.py`, MQTT 3.1.1, both in one process); latency is publish → "
    "arrival. Sustained: nothing lost, ≥ 97 % of the rate offered, p99 ≤ 1 s. The burst "
    "publishes as fast as one paho client can and gives the ceiling. The same worker "
    "against Mosquitto (shipped config, and with autosave once a second) is the baseline."
)

API = Template(
    "$rows events of $devices devices (the default mix scaled, ~half telemetry) spread over "
    "$days days up to now, bulk-loaded with SQLAlchemy Core `insert()` executemany in chunks "
    "of 10,000 into the schema of `backend.db.init_db` (all indexes in place): $rows_per_s "
    "rows/s ($load_s s); `stat_hourly` filled from the same rows ($stat_rows rows, counted "
    "with each kind's `StatSpec.counts`). Then the real backend serves them; one "
    "`httpx.Client` (keep-alive) sends up to $rounds rounds per query after 5 warm-up rounds, "
    "each round following `next_cursor` for up to 3 pages of 100. Percentiles over all pages; "
    "baseline `GET /health` (routing, JSON, one `SELECT 1`)."
)
