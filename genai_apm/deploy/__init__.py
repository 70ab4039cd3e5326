"""Everything generated for a deployment, each with a ``--check`` that fails while a committed
file is stale: Athena/Glue DDL (athena), CloudFormation and Kubernetes (aws_templates), the
Managed Flink package (managed_flink); generated_files writes and compares them."""
