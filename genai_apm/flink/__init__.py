"""Flink: the table environment every job builds on and its function registry (env.py), and
the local standalone cluster with its REST client and `flink run` submission (cluster.py)."""
