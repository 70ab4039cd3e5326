"""User-id pseudonyms (in Python and inside Flink's `invocations` view) and text redaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys

import pytest

from genai_apm.flink.env import register_functions
from genai_apm.jobs import invocations
from genai_apm.privacy import pseudonym, redact
from genai_apm.settings.config import PrivacySettings

SALT = "s3cret-salt"


def expected(user_id: str, salt: str = SALT) -> str:
    return "uid:" + hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def test_pseudonym_is_keyed_sha256_and_idempotent():
    assert pseudonym("alice@example.com", SALT) == expected("alice@example.com")
    assert pseudonym("alice@example.com", "other") != pseudonym("alice@example.com", SALT)
    assert pseudonym("", SALT) == expected("")
    assert pseudonym(None, SALT) is None
    once = pseudonym("u-42", SALT)
    assert pseudonym(once, SALT) == once  # ingest, then an analytics job: hashed once
    # something that merely looks similar is hashed
    assert pseudonym("uid:" + "g" * 64, SALT) == expected("uid:" + "g" * 64)
    assert pseudonym(once.upper(), SALT) == expected(once.upper())


def _event(i: int, user_id) -> dict:
    event = {
        "schema_version": 1,
        "event_time": 1767225600000 + i,
        "request_id": f"r{i}",
        "model_id": "m",
        "status": "success",
    }
    if user_id is not ...:
        event["user_id"] = user_id
    return event


@pytest.fixture(scope="module")
def batch_env():
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.get_config().set("parallelism.default", "1")
    t_env.get_config().set("python.executable", sys.executable)
    register_functions(t_env)
    return t_env


def _user_ids(t_env, events: list[dict], privacy: PrivacySettings, name: str, tmp_path) -> dict:
    from genai_apm.connectors.files import raw_file_source_ddl
    from genai_apm.jobs.sources import decoding
    from genai_apm.settings.config import FlinkSettings

    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    t_env.execute_sql(
        raw_file_source_ddl(name, str(path), decoding=decoding(), flink=FlinkSettings())
    )
    invocations.register(t_env, name, privacy=privacy)
    with t_env.execute_sql("SELECT request_id, user_id FROM invocations").collect() as rows:
        got = {r[0]: r[1] for r in rows}
    for view in ("invocations_rejected", "invocations", "invocations_checked"):
        t_env.drop_temporary_view(view)
    return got


def test_invocations_view_hashes_user_ids_as_hashlib_does(batch_env, tmp_path):
    users = ["alice", "bob@example.com", "", "ünïcode-用户", "alice", pseudonym("carol", SALT)]
    events = [_event(i, u) for i, u in enumerate(users)]
    events += [_event(len(users), None), _event(len(users) + 1, ...)]
    on = PrivacySettings(hash_user_ids=True, user_id_salt=SALT)
    got = _user_ids(batch_env, events, on, "raw_hashed", tmp_path)
    assert got == {
        **{f"r{i}": pseudonym(u, SALT) for i, u in enumerate(users)},
        f"r{len(users)}": None,
        f"r{len(users) + 1}": None,
    }
    # independent of genai_apm.privacy: hashlib on the original ids
    assert got["r0"] == got["r4"] == expected("alice")
    assert got["r3"] == expected("ünïcode-用户")
    assert got["r5"] == expected("carol")

    off = _user_ids(batch_env, events[:2], PrivacySettings(), "raw_plain", tmp_path)
    assert off == {"r0": "alice", "r1": "bob@example.com"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("mail me at jane.doe+x@mail.example.co.uk today", "mail me at [EMAIL] today"),
        ("call +1 (415) 555-0123 or 020 7946 0958", "call [PHONE] or [PHONE]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx12 here", "key [API_KEY] here"),
        ("aws AKIAIOSFODNN7EXAMPLE used", "aws [API_KEY] used"),
        ("Authorization: Bearer eyJhbGciOi.J9eyJzdWIi.OiIxMjM0", "Authorization: Bearer [TOKEN]"),
        (
            "token=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "token=[SECRET]",
        ),
        # realistic keys and tokens (made up, of the real shapes)
        (
            "sk-ant-api03-Xy7Qm2vT9LpR4sWkE8uN1bHcJ6gF0aDzK3iOeY5tUq-VwMnBxC7rS2lP9oGhJ4fDkA8sZ1x"
            "Q-AbCdEf12345AA ok",
            "[API_KEY] ok",
        ),
        ("KEY=sk-svcacct-Zq8WmX3nT7yRb2LcK5vJ9hP1sD4fG6aE0u", "KEY=[API_KEY]"),
        ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end", "secret [SECRET] end"),
        ("aws ASIAY34FZKBOKMUTVV7A temp", "aws [API_KEY] temp"),
        ("stripe sk_live_51H8xYzAbCdEfGhIj", "stripe [API_KEY]"),
        ("gh ghp_1234567890abcdefghijklmnopqrstuvwxYZ", "gh [API_KEY]"),
        ("slack xoxb-123456789012-1234567890123-AbCdEfGh", "slack [API_KEY]"),
        ("maps AIzaSyD-1234567890abcdefghijklmnopqrstu", "maps [API_KEY]"),
        ("authorization: BEARER abcdefgh12345", "authorization: Bearer [TOKEN]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl done",
            "jwt [TOKEN] done",
        ),
        ("(415) 555-0123 after hours", "[PHONE] after hours"),
        # what is not personal or secret stays
        ("in 2024 we sold 1234 units, order 12-3", "in 2024 we sold 1234 units, order 12-3"),
        ("due 2024-05-01, at 2024-05-01T12:00:00Z", "due 2024-05-01, at 2024-05-01T12:00:00Z"),
        ("use sk-learn-compatible-estimators", "use sk-learn-compatible-estimators"),
        (
            "internationalization-and-localization-guide",
            "internationalization-and-localization-guide",
        ),
    ],
)
def test_redact(text, want):
    assert redact(text) == want
