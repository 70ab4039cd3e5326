"""Ingest: records in any supported format -> validated native events, or dead letters.

Reads every configured `topic=format` source, adapts foreign formats (Bedrock invocation
logs, OTLP JSON traces) with a Python table function, checks every event against its
contract with generated SQL, and writes
  valid InvocationEvents -> topics.invocations   (what the analytics jobs read)
  valid SpanEvents       -> topics.spans
  valid BodyEvents       -> topics.bodies and the `bodies` table, only with
                            privacy.store_bodies: the redacted prompt and response per call
  everything else        -> topics.deadletter, with the original payload (bodies removed,
                            or redacted with store_bodies) and the reason
  per-minute counts      -> topics.pipeline      (accepted and dead-lettered, per source)
It is stateless apart from those counts, so a restart loses nothing it has not committed.
"""

from __future__ import annotations

import sys

from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.privacy import register_pseudonym_function, user_id_sql
from genai_apm.schemas.body import BODIES_TABLE, BODY_V1
from genai_apm.schemas.flink_sql import (
    flink_columns,
    quote_ident,
    rejection_reason,
    texts_view_sql,
    typed,
)
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_V1
from genai_apm.settings.config import Settings

JOB = "ingest"
CONTRACTS = {INVOCATION_V1.name: INVOCATION_V1, SPAN_V1.name: SPAN_V1, BODY_V1.name: BODY_V1}
PIPELINE_COLUMNS = (
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    ("source_topic", "STRING"),
    ("format", "STRING"),
    ("accepted", "BIGINT"),
    ("deadletters", "BIGINT"),
)


def _decoded_view(index: int, table: str, fmt: str) -> str:
    """Rows of (raw, kafka_*, contract, doc, adapt_reason) for one source."""
    meta = "`raw`, `src_name`, `src_partition`, `src_offset`, `event_ts`"
    if fmt == "native":
        return f"""
CREATE TEMPORARY VIEW decoded_{index} AS
SELECT {meta}, '{fmt}' AS format, '{INVOCATION_V1.name}' AS contract,
  CAST(`raw` AS STRING) AS doc, CAST(NULL AS STRING) AS adapt_reason
FROM {quote_ident(table)}"""
    return f"""
CREATE TEMPORARY VIEW decoded_{index} AS
SELECT {", ".join("s." + c.strip() for c in meta.split(","))}, '{fmt}' AS format,
  d.contract, d.doc, d.adapt_reason
FROM {quote_ident(table)} AS s
LEFT JOIN LATERAL TABLE(decode_records('{fmt}', s.`raw`)) AS d(contract, doc, adapt_reason)
  ON TRUE"""


def _output_sql(contract, name: str, expression: str, settings: Settings) -> str:
    # the pseudonym is computed once the value was typed; the contract checks use the text
    if contract is INVOCATION_V1 and name == "user_id":
        return user_id_sql(expression, settings.privacy)
    return expression


def assemble(t_env, settings: Settings, statements, sinks: Sinks) -> None:
    """Add the ingest inserts over the raw tables of ``ingest.sources`` (jobs/sources.py).

    With privacy.store_bodies, BodyEvents go to their topic and to the `bodies` Parquet
    table."""
    from genai_apm.connectors.files import partition_values
    from genai_apm.jobs.deadletters import DEADLETTER_COLUMNS, deadletter_select
    from genai_apm.jobs.sources import record_tables

    sources = record_tables(settings)
    store_bodies = settings.privacy.store_bodies
    invocations_sink = sinks.topic("invocations", flink_columns(INVOCATION_V1), key=["model_id"])
    spans_sink = sinks.topic("spans", flink_columns(SPAN_V1), key=["trace_id"])
    deadletter_sink = sinks.topic("deadletter", DEADLETTER_COLUMNS)
    pipeline_sink = sinks.topic("pipeline", PIPELINE_COLUMNS)
    foreign = any(fmt != "native" for _, fmt in sources)
    if foreign:
        from genai_apm.jobs.udfs import (
            DEADLETTER_PAYLOAD_FUNCTION,
            deadletter_payload_function,
            decode_records_function,
        )

        t_env.create_temporary_function("decode_records", decode_records_function(store_bodies))
        t_env.create_temporary_function(
            DEADLETTER_PAYLOAD_FUNCTION, deadletter_payload_function(store_bodies)
        )
    register_pseudonym_function(t_env, settings.privacy)
    for i, (table, fmt) in enumerate(sources):
        t_env.execute_sql(_decoded_view(i, table, fmt))
    t_env.execute_sql(
        "CREATE TEMPORARY VIEW decoded AS "
        + " UNION ALL ".join(f"SELECT * FROM decoded_{i}" for i in range(len(sources)))
    )
    outcomes, deadletters = [], []
    outputs = [(INVOCATION_V1, invocations_sink, None), (SPAN_V1, spans_sink, None)]
    if store_bodies:
        body_columns = flink_columns(BODY_V1)
        outputs.append(
            (
                BODY_V1,
                sinks.topic("bodies", body_columns, key=["request_id"]),
                sinks.parquet(BODIES_TABLE, body_columns),
            )
        )

    def rejected(relation: str, where: str) -> str:
        # the payload a dead letter keeps: Bedrock and OTLP bodies removed or redacted by a
        # Python function called for rejected records only (genai_apm.adapters.bodies)
        if not foreign:
            return relation
        return (
            f"(SELECT *, {DEADLETTER_PAYLOAD_FUNCTION}(`format`, `raw`) AS `kept_raw` "
            f"FROM {relation} WHERE {where})"
        )

    kept_raw = "`kept_raw`" if foreign else "`raw`"
    for contract, sink, table in outputs:
        view = f"checked_{contract.name.lower()}"
        relation = f"(SELECT * FROM decoded WHERE contract = '{contract.name}')"
        texts_view, texts = texts_view_sql(contract, relation)
        t_env.execute_sql(f"CREATE TEMPORARY VIEW texts_{contract.name.lower()} AS\n{texts_view}")
        columns = ",\n  ".join(
            f"{_output_sql(contract, f.name, typed(f, texts), settings)} AS {quote_ident(f.name)}"
            for f in contract.fields
        )
        t_env.execute_sql(f"""
CREATE TEMPORARY VIEW {view} AS
SELECT {columns},
  {rejection_reason(contract, texts)} AS `reason`,
  `raw`, `doc`, `format`, `src_name`, `src_partition`, `src_offset`, `event_ts`
FROM texts_{contract.name.lower()}""")
        names = ", ".join(quote_ident(f.name) for f in contract.fields)
        statements.add_insert_sql(
            f"INSERT INTO {quote_ident(sink)} SELECT {names} FROM {view} WHERE `reason` IS NULL"
        )
        if table:  # Parquet, partitioned by the hour of the call
            statements.add_insert_sql(
                f"INSERT INTO {quote_ident(table)} SELECT {names}, "
                f"{partition_values('`event_time`')} FROM {view} WHERE `reason` IS NULL"
            )
        # a BodyEvent is part of a record already counted by its other events, so only a
        # rejected one counts (as a dead letter); it has the same time and id as its record
        accepted = "0" if contract is BODY_V1 else "CASE WHEN `reason` IS NULL THEN 1 ELSE 0 END"
        outcomes.append(f"""
SELECT `event_ts`, `src_name`, `format`,
  {accepted} AS accepted,
  CASE WHEN `reason` IS NULL THEN 0 ELSE 1 END AS rejected
FROM {view}""")
        tag = f"'{contract.name}/v{contract.version}'"
        deadletters.append(
            deadletter_select(
                rejected(view, "`reason` IS NOT NULL"),
                reason="`reason`",
                fmt="`format`",
                contract=tag,
                event="CASE WHEN `format` = 'native' THEN CAST(NULL AS STRING) ELSE `doc` END",
                where="`reason` IS NOT NULL",
                raw=kept_raw,
            )
        )
    # records no adapter could read have no contract yet
    deadletters.append(
        deadletter_select(
            rejected("decoded", "adapt_reason IS NOT NULL"),
            reason="adapt_reason",
            event="CAST(NULL AS STRING)",
            fmt="`format`",
            contract="CAST(NULL AS STRING)",
            where="adapt_reason IS NOT NULL",
            raw=kept_raw,
        )
    )
    # one INSERT, so one Kafka sink: an exactly-once sink's transactional ids come from its
    # table, and two sinks of one table with the same ids are refused by the connector
    statements.add_insert_sql(
        f"INSERT INTO {quote_ident(deadletter_sink)}\n" + "\nUNION ALL\n".join(deadletters)
    )
    outcomes.append("""
SELECT `event_ts`, `src_name`, `format`, 0 AS accepted, 1 AS rejected
FROM decoded WHERE adapt_reason IS NOT NULL""")
    t_env.execute_sql("CREATE TEMPORARY VIEW outcomes AS " + " UNION ALL ".join(outcomes))
    window = f"INTERVAL '{int(settings.ingest.metrics_window_s)}' SECOND"
    statements.add_insert_sql(f"""
INSERT INTO {quote_ident(pipeline_sink)}
SELECT CAST(window_start AS TIMESTAMP_LTZ(3)), CAST(window_end AS TIMESTAMP_LTZ(3)),
  `src_name`, `format`, CAST(SUM(accepted) AS BIGINT), CAST(SUM(rejected) AS BIGINT)
FROM TABLE(TUMBLE(TABLE outcomes, DESCRIPTOR(`event_ts`), {window}))
GROUP BY window_start, window_end, `src_name`, `format`""")


SPEC = Job(JOB, (assemble,))
run, main = SPEC.run, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
