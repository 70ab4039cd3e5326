"""The invocation stream every analytic reads: decoded records split into valid rows and rejects.

The source (jobs/sources.py) decodes each record once with the contract's `genai-contract`
format (schemas/flink_format.py): its physical columns are the typed fields, `reason`,
`event_ts` (the rowtime) and `raw`. Views registered by ``register``:
  invocations_checked  every record: typed contract columns + `reason` + source metadata
  invocations          records honouring the contract (reason IS NULL), with rowtime `event_ts`
  invocations_rejected dead-letter rows: payload, where it came from, why, when
"""

from __future__ import annotations

from genai_apm.flink.env import create_view
from genai_apm.jobs.deadletters import deadletter_select
from genai_apm.privacy import register_pseudonym_function, user_id_sql
from genai_apm.schemas.contract import Contract
from genai_apm.schemas.flink_sql import quote_ident
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.settings.config import PrivacySettings


def register(
    t_env,
    decoded_source: str,
    contract: Contract = INVOCATION_V1,
    privacy: PrivacySettings | None = None,
) -> None:
    """``decoded_source``: a table with Decoding(contract, ...).columns() and src_* metadata."""
    privacy = privacy or PrivacySettings()
    register_pseudonym_function(t_env, privacy)
    cols = ",\n  ".join(
        f"{_column_sql(quote_ident(f.name), f.name, privacy)} AS {quote_ident(f.name)}"
        for f in contract.fields
    )
    create_view(
        t_env,
        "invocations_checked",
        f"""
SELECT
  {cols},
  `event_ts`, `reason`, `raw`, `src_name`, `src_partition`, `src_offset`
FROM {quote_ident(decoded_source)}""",
    )
    create_view(t_env, "invocations", "SELECT * FROM invocations_checked WHERE `reason` IS NULL")
    create_view(
        t_env,
        "invocations_rejected",
        deadletter_select(
            "invocations_checked",
            reason="`reason`",
            event="CAST(NULL AS STRING)",
            fmt="'native'",
            contract=f"'{contract.name}/v{contract.version}'",
            where="`reason` IS NOT NULL",
        ),
    )


def _column_sql(expression: str, name: str, privacy: PrivacySettings) -> str:
    # the format checked the original text; only the output is hashed
    return user_id_sql(expression, privacy) if name == "user_id" else expression
