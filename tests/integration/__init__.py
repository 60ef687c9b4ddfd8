"""Integration tier: real Mosquitto, SQLite and PostgreSQL, backend processes."""
