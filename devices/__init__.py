"""The simulated Lijia Street fleet: pure device behaviour plus the MQTT adapter around it."""
