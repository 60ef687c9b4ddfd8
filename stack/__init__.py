"""Running the street as local processes: credentials, broker, and the one-command launcher."""
