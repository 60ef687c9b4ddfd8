"""Unit tier: pure code, no broker, database or process (seconds: `pytest tests/unit`)."""
