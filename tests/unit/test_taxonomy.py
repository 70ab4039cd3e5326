from __future__ import annotations

import re
from pathlib import Path

import pytest

from genai_apm.adapters import taxonomy
from genai_apm.adapters.taxonomy import TAXONOMY, classify, markdown_table
from genai_apm.schemas.invocation import ERROR_CLASSES

README = Path(taxonomy.__file__).with_name("README.md")

# (error_type, http_status, finish_reason) -> class, as the brief and provider docs state them
CASES = [
    # Bedrock
    (("ThrottlingException", None, None), "throttle"),
    (("ServiceQuotaExceededException", None, None), "throttle"),
    (("ValidationException", None, None), "client"),
    (("AccessDeniedException", None, None), "client"),
    (("ModelTimeoutException", None, None), "timeout"),
    (("InternalServerException", None, None), "server"),
    (("ServiceUnavailableException", None, None), "server"),
    (("ModelStreamErrorException", None, None), "server"),
    (("ModelErrorException", None, None), "server"),
    # OpenAI Python SDK
    (("RateLimitError", None, None), "throttle"),
    (("APITimeoutError", None, None), "timeout"),
    (("BadRequestError", None, None), "client"),
    (("AuthenticationError", None, None), "client"),
    (("PermissionDeniedError", None, None), "client"),
    (("NotFoundError", None, None), "client"),
    (("UnprocessableEntityError", None, None), "client"),
    (("InternalServerError", None, None), "server"),
    (("APIConnectionError", None, None), "server"),
    (("ContentFilterFinishReasonError", None, None), "content_filtered"),
    # Anthropic API error types
    (("rate_limit_error", None, None), "throttle"),
    (("overloaded_error", None, None), "server"),
    (("api_error", None, None), "server"),
    (("invalid_request_error", None, None), "client"),
    (("authentication_error", None, None), "client"),
    (("permission_error", None, None), "client"),
    (("not_found_error", None, None), "client"),
    (("request_too_large", None, None), "client"),
    # generic timeouts
    (("TimeoutError", None, None), "timeout"),
    (("ReadTimeout", None, None), "timeout"),
    (("DeadlineExceeded", None, None), "timeout"),
    (("DEADLINE_EXCEEDED", None, None), "timeout"),
    (("timeout", None, None), "timeout"),
    # HTTP status alone
    ((None, 429, None), "throttle"),
    ((None, 400, None), "client"),
    ((None, 403, None), "client"),
    ((None, 418, None), "client"),
    ((None, 408, None), "timeout"),
    ((None, 504, None), "timeout"),
    ((None, 500, None), "server"),
    ((None, 503, None), "server"),
    ((None, 424, None), "server"),
    ((None, 529, None), "server"),
    ((None, 599, None), "server"),
    # finish reasons
    ((None, None, "guardrail_intervened"), "content_filtered"),
    ((None, None, "content_filtered"), "content_filtered"),
    ((None, None, "content_filter"), "content_filtered"),
    ((None, None, "SAFETY"), "content_filtered"),
    # no error signal
    ((None, None, None), None),
    ((None, 200, "stop"), None),
    ((None, None, "end_turn"), None),
    ((None, 302, None), None),
    # an error we cannot place stays unclassified
    (("SomethingOdd", None, None), None),
]


@pytest.mark.parametrize(("signals", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_classify(signals, expected):
    assert classify(*signals) == expected


@pytest.mark.parametrize(
    "spelling",
    ["throttlingexception", "THROTTLINGEXCEPTION", "Throttling_Exception", " throttlingException "],
)
def test_names_match_whatever_their_case_and_separators(spelling):
    assert classify(spelling) == "throttle"


@pytest.mark.parametrize(
    ("qualified", "expected"),
    [
        ("openai.RateLimitError", "throttle"),
        ("anthropic.APITimeoutError", "timeout"),
        ("java.net.SocketTimeoutException", "timeout"),
        ("httpx.ReadTimeout", "timeout"),
        ("google.api_core.exceptions.ResourceExhausted", "throttle"),
        ("botocore.errorfactory.ValidationException", "client"),
    ],
)
def test_qualified_exception_names_match_on_their_last_part(qualified, expected):
    assert classify(qualified) == expected


def test_name_wins_over_status_and_status_over_finish_reason():
    # Bedrock sends some quota errors with 400, and its stream errors with 424
    assert classify("ServiceQuotaExceededException", 400) == "throttle"
    assert classify("ModelStreamErrorException", 424) == "server"
    assert classify("ValidationException", 500) == "client"
    assert classify("SomethingOdd", 429) == "throttle"
    assert classify(None, 500, "content_filter") == "server"
    assert classify("SomethingOdd", None, "guardrail_intervened") == "content_filtered"


def test_a_status_code_as_error_type_counts_as_the_status():
    # the OpenTelemetry error.type convention gives "500" as an example value
    assert classify("500") == "server"
    assert classify("429") == "throttle"
    assert classify("404") == "client"
    assert classify("429", 500) == "server"  # an explicit status wins over the digits
    assert classify("12345") is None


def test_every_class_is_one_the_contract_allows():
    assert {rule.error_class for rule in TAXONOMY} <= set(ERROR_CLASSES)


def test_no_signal_belongs_to_two_classes():
    def key(text: str) -> str:
        return re.sub(r"[\s_-]", "", text.lower())

    classes: dict = {}
    for rule in TAXONOMY:
        # RateLimitError and rate_limit_error are one key; listing both documents both
        for signal in (
            *(("name", key(n)) for n in rule.names),
            *(("reason", key(r)) for r in rule.finish_reasons),
            *(("status", s) for s in rule.http_statuses),
        ):
            classes.setdefault(signal, set()).add(rule.error_class)
    assert {signal: c for signal, c in classes.items() if len(c) > 1} == {}


def test_every_listed_signal_classifies_as_its_row():
    for rule in TAXONOMY:
        for name in rule.names:
            assert classify(name) == rule.error_class, name
        for status in rule.http_statuses:
            assert classify(None, status) == rule.error_class, status
        for reason in rule.finish_reasons:
            assert classify(None, None, reason) == rule.error_class, reason


def test_readme_table_is_the_generated_one():
    text = README.read_text()
    found = re.search(r"<!-- taxonomy:start -->\n(.*?)<!-- taxonomy:end -->", text, re.S)
    assert found, "README.md lost its taxonomy markers"
    assert found.group(1) == markdown_table()


def test_markdown_table_has_a_row_per_rule():
    rows = markdown_table().splitlines()
    assert rows[0].startswith("| error_class |")
    assert len(rows) == 2 + len(TAXONOMY)
    assert "| `throttle` |" in rows[2]
    assert "429" in rows[2]
    assert "other 5xx" in next(r for r in rows if r.startswith("| `server`"))
