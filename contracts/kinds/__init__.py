"""One module per device kind; each registers a KindSpec in the catalogue on import."""
