"""Drills and fault injection for Lijia Street: inject events as a device, run scenario files
(timeline + expectations, JUnit report), record and replay broker traffic. See
docs/scenarios.md."""
