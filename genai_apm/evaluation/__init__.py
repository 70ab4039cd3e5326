"""How well the analyses do against ground truth: scoring (the anomaly job's open events
against labelled generator incidents and the NAB subset)."""
