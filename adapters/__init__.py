"""What every process uses: credentials files, fleet look-ups, the paho client factory, limits,
the typed REST client."""
