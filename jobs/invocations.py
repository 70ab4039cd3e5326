"""The invocation stream every analytic reads: raw records split into valid rows and rejects.

Views registered by ``register``:
  invocations_checked  every record: typed contract columns + `reason` + source metadata
  invocations          records honouring the contract (reason IS NULL), with rowtime `event_ts`
  invocations_rejected dead-letter rows: payload, where it came from, why, when
"""

from __future__ import annotations

from genai_apm.config import PrivacySettings
from genai_apm.jobs.deadletters import deadletter_select
from genai_apm.privacy import register_pseudonym_function, user_id_sql
from genai_apm.schemas.contract import Contract
from genai_apm.schemas.flink_sql import (
    quote_ident,
    rejection_reason,
    texts_view_sql,
    typed,
)
from genai_apm.schemas.invocation import INVOCATION_V1


def register(
    t_env,
    raw_source: str,
    contract: Contract = INVOCATION_V1,
    privacy: PrivacySettings | None = None,
) -> None:
    privacy = privacy or PrivacySettings()
    register_pseudonym_function(t_env, privacy)
    # every field's text from one parse of the document, each number converted once
    view, texts = texts_view_sql(contract, quote_ident(raw_source))
    t_env.execute_sql(f"CREATE TEMPORARY VIEW invocations_texts AS\n{view}")
    cols = ",\n  ".join(
        f"{_column_sql(typed(f, texts), f.name, privacy)} AS {quote_ident(f.name)}"
        for f in contract.fields
    )
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW invocations_checked AS
SELECT
  {cols},
  `event_ts`,
  {rejection_reason(contract, texts)} AS `reason`,
  `raw`, `src_name`, `src_partition`, `src_offset`
FROM invocations_texts""")
    t_env.execute_sql("""
CREATE TEMPORARY VIEW invocations AS
SELECT * FROM invocations_checked WHERE `reason` IS NULL""")
    t_env.execute_sql(
        "CREATE TEMPORARY VIEW invocations_rejected AS"
        + deadletter_select(
            "invocations_checked",
            reason="`reason`",
            event="CAST(NULL AS STRING)",
            fmt="'native'",
            contract=f"'{contract.name}/v{contract.version}'",
            where="`reason` IS NOT NULL",
        )
    )


def _column_sql(expression: str, name: str, privacy: PrivacySettings) -> str:
    # checks (rejection_reason) still see the original text; only the output is hashed
    return user_id_sql(expression, privacy) if name == "user_id" else expression
