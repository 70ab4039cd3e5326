"""Sending the outputs elsewhere: the derived topics as CloudWatch metrics (cloudwatch)."""
