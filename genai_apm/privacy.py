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

from genai_apm.config import PrivacySettings

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
_REDACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("[API_KEY]", re.compile(r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9_-]+-)?[A-Za-z0-9_-]{16,}")),
    ("[API_KEY]", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("Bearer [TOKEN]", re.compile(r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{8,}")),
    ("[EMAIL]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    # long runs of letters AND digits (hex or base64 secrets, JWT segments); plain words and
    # plain numbers are left alone
    (
        "[SECRET]",
        re.compile(r"\b(?=[\w+/-]*\d)(?=[\w+/-]*[A-Za-z])[\w+/-]{32,}={0,2}", re.ASCII),
    ),
    # international or national numbers, 7 to 15 digits, with the usual separators
    ("[PHONE]", re.compile(r"(?<![\w+])\+?\d(?:[\s().-]{0,2}\d){6,14}(?!\w)")),
)


def redact(text: str) -> str:
    """``text`` with emails, phone numbers, API keys, bearer tokens and long secrets replaced."""
    for replacement, pattern in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text
