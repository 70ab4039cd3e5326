"""Dead-letter rows: every job that rejects a record writes it here in one shape.

The payload is the original record (also as base64, so bytes that are not UTF-8 survive),
except that ingest removes or redacts the prompt and response bodies of Bedrock and OTLP
records (genai_apm.adapters.bodies); `event` is the normalised event that failed validation
when an adapter produced one (one OTLP request can carry many spans, so the payload alone
would not say which).
"""

from __future__ import annotations

DEADLETTER_COLUMNS = (
    ("payload", "STRING"),
    ("payload_base64", "STRING"),
    ("event", "STRING"),
    ("source", "STRING"),
    ("format", "STRING"),
    ("contract", "STRING"),
    ("reason", "STRING"),
    ("rejected_at", "TIMESTAMP_LTZ(3)"),
)


def deadletter_select(
    relation: str,
    *,
    reason: str,
    event: str,
    fmt: str,
    contract: str,
    where: str,
    raw: str = "`raw`",
) -> str:
    """SELECT producing DEADLETTER_COLUMNS from a relation with `raw` and src_* columns;
    ``raw`` is the BYTES expression kept as the payload (ingest removes bodies from it)."""
    return f"""
SELECT
  CAST({raw} AS STRING) AS payload,
  TO_BASE64({raw}) AS payload_base64,
  {event} AS event,
  -- topic/partition@offset for Kafka; the file path for files
  CASE WHEN `src_partition` IS NULL THEN `src_name`
       ELSE CONCAT(`src_name`, '/', CAST(`src_partition` AS STRING), '@',
                   CAST(`src_offset` AS STRING)) END AS source,
  {fmt} AS format,
  {contract} AS contract,
  {reason} AS reason,
  CURRENT_ROW_TIMESTAMP() AS rejected_at
FROM {relation}
WHERE {where}"""
