"""End-to-end tier: the whole street as processes, the console, the browser, the launcher."""
