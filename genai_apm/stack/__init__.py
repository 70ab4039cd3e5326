"""The embedded local stack: a real Kafka broker (KRaft) and a moto AWS emulator on loopback."""
