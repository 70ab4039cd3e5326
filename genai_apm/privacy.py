"""Pseudonymous user ids (privacy.hash_user_ids) and redaction of personal data in free text.

User ids are replaced where events enter Flink: the ingest job's InvocationEvent output and the
`invocations` view every analytics job reads. Both apply the same function, and a value that
already is a pseudonym passes unchanged, so an event that went through ingest and then an
analytics job is hashed once, and the same user has the same pseudonym on every path.

The hash is HMAC-SHA256 keyed with privacy.user_id_salt, computed in a Python UDF rather than
with SQL's SHA2: the key would otherwise be a literal in the SQL text, and Flink prints that
text in operator names, plans and logs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the adapters use redact(): this module stays stdlib-only at run time
    from genai_apm.settings.config import PrivacySettings

PSEUDONYM_PREFIX = "uid:"
PSEUDONYM = re.compile(r"uid:[0-9a-f]{64}")
PSEUDONYM_FUNCTION = "GENAI_PSEUDONYM"


def pseudonym(user_id: str | None, salt: str) -> str | None:
    """``uid:`` + hex HMAC-SHA256(salt, user_id); None stays None, pseudonyms stay as they are."""
    if user_id is None or PSEUDONYM.fullmatch(user_id):
        return user_id
    digest = hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest


def user_id_sql(expression: str, privacy: PrivacySettings) -> str:
    """The SQL for a user_id column: ``expression`` itself, or its pseudonym when enabled."""
    if not privacy.hash_user_ids:
        return expression
    return f"{PSEUDONYM_FUNCTION}({expression})"


def register_pseudonym_function(t_env, privacy: PrivacySettings) -> None:
    """Make PSEUDONYM_FUNCTION available to ``t_env`` when user ids are to be hashed."""
    if not privacy.hash_user_ids:
        return
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    salt = privacy.user_id_salt  # travels pickled inside the function, never as SQL text

    def pseudonymise(user_id: str | None) -> str | None:
        return pseudonym(user_id, salt)

    t_env.create_temporary_system_function(
        PSEUDONYM_FUNCTION,
        udf(pseudonymise, result_type=DataTypes.STRING(), deterministic=True),
    )


# Redaction: for free text (prompts, responses) kept anywhere by an opt-in path. Order matters:
# keys and tokens first, so a key that contains digits is not half-eaten by the phone rule.
# Over-redaction is the safe side: a long order number may come out as [PHONE].
_REDACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # OpenAI (sk-..., sk-proj-..., sk-svcacct-...), Anthropic (sk-ant-api03-...) and the like;
    # a digit is required, which random keys of this length practically always have and prose
    # such as "sk-learn-compatible-estimators" has not
    ("[API_KEY]", re.compile(r"\b(?:sk|pk|rk)-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}")),
    # Stripe-style sk_live_/sk_test_, GitHub (ghp_, gho_, ghs_, github_pat_), Slack (xoxb-...),
    # Google API keys (AIza + 35)
    ("[API_KEY]", re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,}")),
    ("[API_KEY]", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("[API_KEY]", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("[API_KEY]", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    # AWS access key ids: long-term (AKIA) and temporary (ASIA); the secret key beside one is
    # 40 characters of base64 and falls to the [SECRET] rule below
    ("[API_KEY]", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("Bearer [TOKEN]", re.compile(r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}")),
    # JSON Web Tokens without a Bearer in front: three base64url segments, the first "eyJ"
    ("[TOKEN]", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
    ("[EMAIL]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    # long runs of letters AND digits (hex or base64 secrets, JWT segments); plain words and
    # plain numbers are left alone
    (
        "[SECRET]",
        re.compile(r"\b(?=[\w+/-]*\d)(?=[\w+/-]*[A-Za-z])[\w+/-]{32,}={0,2}", re.ASCII),
    ),
    # international or national numbers, 7 to 15 digits, with the usual separators; an opening
    # parenthesis of an area code goes with the number; ISO dates (2024-05-01) are not numbers
    (
        "[PHONE]",
        re.compile(
            r"(?<![\w+(])(?!\d{4}-\d{2}-\d{2}\b)(?:\+|\()?\d(?:[\s().-]{0,2}\d){6,14}(?!\w)"
        ),
    ),
)


def redact(text: str) -> str:
    """``text`` with emails, phone numbers, API keys, bearer tokens and long secrets replaced."""
    for replacement, pattern in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text
