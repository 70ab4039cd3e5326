"""Kafka from Python: the client helpers every tool uses (io.py: topics, produce, consume,
errors as one line), publishing traffic to Kafka, Kinesis or files (publish.py), and the
Kinesis -> Kafka bridge's runner (bridge.py)."""
