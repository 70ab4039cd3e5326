"""The views every span analytic reads (jobs/agents.py), over a raw source decoded by the
SpanEvent contract's format (jobs/sources.py): `spans` (valid, typed) and `spans_rejected`
(dead-letter rows)."""

from __future__ import annotations


def register(t_env, decoded_source: str) -> None:
    """Views over the span records, decoded once by the source's `genai-contract` format
    (jobs/sources.span_decoding): `spans` (valid, typed) and `spans_rejected`."""
    from genai_apm.jobs.deadletters import deadletter_select
    from genai_apm.schemas.flink_sql import quote_ident
    from genai_apm.schemas.span import SPAN_V1

    names = ", ".join(quote_ident(n) for n in SPAN_V1.names)
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW spans_checked AS
SELECT
  {names},
  `event_ts`, `reason`, `raw`, `src_name`, `src_partition`, `src_offset`
FROM {quote_ident(decoded_source)}""")
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW spans AS
SELECT {names}, `event_ts` FROM spans_checked WHERE `reason` IS NULL""")
    t_env.execute_sql(
        "CREATE TEMPORARY VIEW spans_rejected AS"
        + deadletter_select(
            "spans_checked",
            reason="`reason`",
            event="CAST(NULL AS STRING)",
            fmt="'native'",
            contract=f"'{SPAN_V1.name}/v{SPAN_V1.version}'",
            where="`reason` IS NOT NULL",
        )
    )
