"""Error taxonomy: provider error names, HTTP statuses and finish reasons -> one error class.

Providers spell the same failure many ways (``ThrottlingException``, ``RateLimitError``,
``rate_limit_error``, HTTP 429); dashboards need one vocabulary, ``ERROR_CLASSES`` of the
InvocationEvent contract. ``TAXONOMY`` is the table as data: ``classify`` reads it and
``markdown_table`` renders it for genai_apm/adapters/README.md, so code and docs cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    error_class: str
    # exception class names and provider error codes, matched case-insensitively
    names: tuple[str, ...] = ()
    http_statuses: tuple[int, ...] = ()
    # a whole status family ("other 4xx"), consulted only when no exact status matches
    http_family: int | None = None
    # stop/finish reasons that mean the provider withheld or cut the output
    finish_reasons: tuple[str, ...] = ()


TAXONOMY: tuple[Rule, ...] = (
    Rule(
        "throttle",
        names=(
            "ThrottlingException",  # Bedrock
            "ServiceQuotaExceededException",  # Bedrock: a quota, whatever status it comes with
            "TooManyRequestsException",  # AWS
            "RateLimitError",  # OpenAI and Anthropic SDKs
            "rate_limit_error",  # Anthropic API error type
            "ResourceExhausted",  # Google API core / gRPC RESOURCE_EXHAUSTED
        ),
        http_statuses=(429,),
    ),
    Rule(
        "timeout",
        names=(
            "ModelTimeoutException",  # Bedrock
            "APITimeoutError",  # OpenAI and Anthropic SDKs
            "TimeoutError",  # Python builtin, asyncio, concurrent.futures
            "Timeout",  # requests; socket.timeout; the OpenTelemetry error.type example
            "TimeoutException",  # httpx
            "ReadTimeout",  # requests, httpx
            "ReadTimeoutError",  # botocore, urllib3
            "ConnectTimeout",  # requests, httpx
            "ConnectTimeoutError",  # botocore, urllib3
            "WriteTimeout",  # httpx
            "PoolTimeout",  # httpx
            "SocketTimeoutException",  # Java
            "DeadlineExceeded",  # Google API core / gRPC DEADLINE_EXCEEDED, Go context
        ),
        http_statuses=(408, 504),
    ),
    Rule(
        "client",
        names=(
            "ValidationException",  # Bedrock
            "AccessDeniedException",  # Bedrock
            "ResourceNotFoundException",  # Bedrock
            "ConflictException",  # Bedrock
            "UnrecognizedClientException",  # AWS credentials
            "ExpiredTokenException",  # AWS credentials
            "InvalidSignatureException",  # AWS credentials
            "BadRequestError",  # OpenAI and Anthropic SDKs
            "AuthenticationError",  # OpenAI and Anthropic SDKs
            "PermissionDeniedError",  # OpenAI and Anthropic SDKs
            "NotFoundError",  # OpenAI and Anthropic SDKs
            "ConflictError",  # OpenAI and Anthropic SDKs
            "UnprocessableEntityError",  # OpenAI and Anthropic SDKs
            "invalid_request_error",  # Anthropic API error types from here on
            "authentication_error",
            "billing_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "InvalidArgument",  # Google API core / gRPC INVALID_ARGUMENT
            "Unauthenticated",  # Google API core / gRPC UNAUTHENTICATED
            "PermissionDenied",  # Google API core / gRPC PERMISSION_DENIED
        ),
        http_statuses=(400, 401, 402, 403, 404, 409, 413, 422),
        http_family=4,
    ),
    Rule(
        "server",
        names=(
            "InternalServerException",  # Bedrock
            "ServiceUnavailableException",  # Bedrock
            "ModelStreamErrorException",  # Bedrock (HTTP 424)
            "ModelErrorException",  # Bedrock (HTTP 424)
            "ModelNotReadyException",  # Bedrock: provider capacity, not the caller's rate
            "InternalFailure",  # AWS
            "InternalServerError",  # OpenAI and Anthropic SDKs, Google API core
            "ServiceUnavailableError",  # OpenAI SDK before 1.0
            "APIConnectionError",  # OpenAI and Anthropic SDKs: the provider was unreachable
            "api_error",  # Anthropic API error type (also matches OpenAI's base APIError)
            "overloaded_error",  # Anthropic API error type (HTTP 529)
            "ServiceUnavailable",  # Google API core / gRPC UNAVAILABLE
        ),
        http_statuses=(424, 500, 502, 503, 529),
        http_family=5,
    ),
    Rule(
        "content_filtered",
        names=("ContentFilterFinishReasonError",),  # OpenAI SDK, structured outputs
        finish_reasons=(
            "guardrail_intervened",  # Bedrock Converse stopReason
            "content_filtered",  # Bedrock Converse stopReason
            "content_filter",  # OpenAI finish_reason
            "refusal",  # Anthropic stop_reason (streaming classifiers)
            "SAFETY",  # Gemini finishReason, as are the rest
            "PROHIBITED_CONTENT",
            "BLOCKLIST",
            "SPII",
            "RECITATION",
        ),
    ),
)


def _normalised(text: str) -> str:
    # one key for RateLimitError / rate_limit_error / RATE-LIMIT-ERROR
    return text.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


_BY_NAME = {_normalised(n): r.error_class for r in TAXONOMY for n in r.names}
_BY_STATUS = {s: r.error_class for r in TAXONOMY for s in r.http_statuses}
_BY_FAMILY = {r.http_family: r.error_class for r in TAXONOMY if r.http_family}
_BY_FINISH_REASON = {_normalised(f): r.error_class for r in TAXONOMY for f in r.finish_reasons}


def _class_of_name(error_type: str) -> str | None:
    found = _BY_NAME.get(_normalised(error_type))
    if found is None and "." in error_type:
        # qualified names (openai.RateLimitError, java.net.SocketTimeoutException) are what
        # the OpenTelemetry error.type convention recommends for exceptions
        found = _BY_NAME.get(_normalised(error_type.rsplit(".", 1)[1]))
    return found


def _status_in(error_type: str) -> int | None:
    # error.type may be a bare status code ("500", the convention's own example)
    text = error_type.strip()
    return int(text) if len(text) == 3 and text.isascii() and text.isdigit() else None


def _class_of_status(status: int) -> str | None:
    return _BY_STATUS.get(status) or _BY_FAMILY.get(status // 100)


def classify(
    error_type: str | None, http_status: int | None = None, finish_reason: str | None = None
) -> str | None:
    """The error class of a call: name match first, then HTTP status, then finish reason.

    None when nothing signals an error (a 2xx and a normal finish) and also when the error is
    one we cannot place: such calls still count as errors through ``status`` but stay out of
    the server/client/... buckets rather than inflating one of them with a guess.
    """
    if error_type:
        found = _class_of_name(error_type)
        if found:
            return found
        if http_status is None:
            http_status = _status_in(error_type)
    if http_status is not None and not isinstance(http_status, bool):
        found = _class_of_status(http_status)
        if found:
            return found
    if finish_reason:
        return _BY_FINISH_REASON.get(_normalised(finish_reason))
    return None


def _statuses(rule: Rule) -> str:
    parts = [str(s) for s in rule.http_statuses]
    if rule.http_family:
        parts.append(f"other {rule.http_family}xx")
    return ", ".join(parts)


def _codes(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def markdown_table() -> str:
    """TAXONOMY as the Markdown table in genai_apm/adapters/README.md."""
    lines = [
        "| error_class | error names | HTTP status | finish / stop reasons |",
        "| --- | --- | --- | --- |",
    ]
    for rule in TAXONOMY:
        cells = (
            f"`{rule.error_class}`",
            _codes(rule.names),
            _statuses(rule),
            _codes(rule.finish_reasons),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
