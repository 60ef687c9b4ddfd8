"""The operations backend: MQTT ingest into SQLModel storage, device twins, commands, REST API."""
