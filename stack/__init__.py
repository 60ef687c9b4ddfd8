"""Running the street as local processes: the broker and the one-command launcher."""
