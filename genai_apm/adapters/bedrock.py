"""Amazon Bedrock model invocation logs <-> InvocationEvent v1.

A log record is what Bedrock writes to S3 and CloudWatch Logs when model invocation logging
is on (``schemaType`` "ModelInvocationLog"). The request and response bodies it carries are
read only for stop reason, latency and token usage; their text never reaches an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from genai_apm.adapters.base import AdapterError, finite_number
from genai_apm.adapters.taxonomy import classify
from genai_apm.schemas.invocation import INVOCATION_V1

PROVIDER = "aws.bedrock"
SCHEMA_TYPE = "ModelInvocationLog"
# Bedrock operation -> (contract operation, streaming)
OPERATIONS = {
    "Converse": ("converse", False),
    "ConverseStream": ("converse", True),
    "InvokeModel": ("invoke", False),
    "InvokeModelWithResponseStream": ("invoke", True),
    "InvokeModelWithBidirectionalStream": ("invoke", True),
}
# requestMetadata keys copied into the event under the same name
METADATA_FIELDS = ("session_id", "app_id", "user_id", "tenant_id", "feature")
# Fields an InvocationEvent keeps through bedrock_log_from_invocation and back. Not kept:
# trace/span ids, ttft and http_status (no place in the log), reasoning tokens, and latency
# of InvokeModel calls and failed calls (only a Converse response body carries latencyMs).
ROUND_TRIP_FIELDS = (
    "schema_version",
    "event_time",
    "request_id",
    *METADATA_FIELDS,
    "provider",
    "model_id",
    "operation",
    "region",
    "streaming",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "status",
    "error_type",
    "error_class",
    "finish_reason",
    "guardrail_intervened",
)
GUARDRAIL_STOP_REASON = "guardrail_intervened"
# what the encoder writes as errorCode for an error event that names only its class
ERROR_CODE_OF_CLASS = {
    "throttle": "ThrottlingException",
    "client": "ValidationException",
    "timeout": "ModelTimeoutException",
    "server": "InternalServerException",
}
SYNTHETIC_TEXT = "[synthetic traffic: no prompt or response text]"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _fail(reason: str) -> NoReturn:
    raise AdapterError(f"bedrock log: {reason}")


def _object(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(f"{where} must be an object")
    return value


def _text(value: object, where: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            _fail(f"{where} is required")
        return None
    if not isinstance(value, str):
        _fail(f"{where} must be a string")
    return value


def _count(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(f"{where} must be an integer")
    return value


def _millis(value: object, where: str) -> float | None:
    if value is None:
        return None
    number = finite_number(value)
    if number is None:
        _fail(f"{where} must be a finite number")
    return number


def _epoch_ms(timestamp: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(timestamp)
    except (ValueError, OverflowError):
        moment = None  # raised below, so the parser's message (quoting the input) is not chained
    if moment is None:
        _fail(f"{where} is not an ISO 8601 timestamp")
    if moment.tzinfo is None:
        _fail(f"{where} has no time zone")
    return (moment - EPOCH) // timedelta(milliseconds=1)


def normalise_model_id(model_id: str) -> str:
    """A foundation model, inference profile or provisioned model ARN -> its id; ids unchanged.

    arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0
    -> anthropic.claude-3-haiku-20240307-v1:0, so calls by id and by ARN group together.
    """
    if not model_id.startswith("arn:"):
        return model_id
    resource = model_id.split(":", 5)[-1]
    _, slash, resource_id = resource.partition("/")
    # an ARN we cannot take apart is still the best name we have for the model
    return resource_id if slash and resource_id else model_id


@dataclass
class _ResponseSummary:
    """What the output body tells us: everything else in it is response content."""

    stop_reason: str | None = None
    latency_ms: float | None = None
    usage: dict = field(default_factory=dict)


def _summarise_message(body: dict, summary: _ResponseSummary, where: str) -> None:
    # Converse: stopReason, metrics.latencyMs, usage; Anthropic Messages: stop_reason, usage
    for key in ("stopReason", "stop_reason"):
        if key in body:
            summary.stop_reason = _text(body[key], f"{where}.{key}")
    metrics = _object(body.get("metrics"), f"{where}.metrics")
    if "latencyMs" in metrics:
        summary.latency_ms = _millis(metrics["latencyMs"], f"{where}.metrics.latencyMs")
    if "usage" in body:
        summary.usage = _object(body["usage"], f"{where}.usage")


def _summarise_stream(events: list, summary: _ResponseSummary, where: str) -> None:
    for i, event in enumerate(events):
        at = f"{where}[{i}]"
        event = _object(event, at)
        if "messageStop" in event:  # ConverseStream
            stop = _object(event["messageStop"], f"{at}.messageStop")
            summary.stop_reason = _text(stop.get("stopReason"), f"{at}.messageStop.stopReason")
        if "metadata" in event:  # ConverseStream: usage and metrics arrive last
            _summarise_message(_object(event["metadata"], f"{at}.metadata"), summary, at)
        if event.get("type") == "message_delta":  # Anthropic Messages stream
            delta = _object(event.get("delta"), f"{at}.delta")
            summary.stop_reason = _text(delta.get("stop_reason"), f"{at}.delta.stop_reason")


def _summarise_response(body: object) -> _ResponseSummary:
    where = "output.outputBodyJson"
    summary = _ResponseSummary()
    if body is None:
        return summary
    if isinstance(body, dict):
        _summarise_message(body, summary, where)
    elif isinstance(body, list):
        _summarise_stream(body, summary, where)
    else:
        _fail(f"{where} must be an object or an array")
    return summary


def _usage_count(usage: dict, *keys: str) -> int | None:
    for key in keys:
        if usage.get(key) is not None:
            return _count(usage[key], f"output.outputBodyJson.usage.{key}")
    return None


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def invocation_from_bedrock_log(log: dict) -> dict:
    """One Bedrock model invocation log record -> one InvocationEvent v1 dict."""
    if not isinstance(log, dict):
        raise AdapterError("bedrock log must be a JSON object")
    if log.get("schemaType", SCHEMA_TYPE) != SCHEMA_TYPE:
        _fail(f"schemaType is not {SCHEMA_TYPE}")
    bedrock_operation = _text(log.get("operation"), "operation")
    operation, streaming = OPERATIONS.get(bedrock_operation, (None, None))
    if operation is None and bedrock_operation is not None:
        operation = bedrock_operation.lower()
    request = _object(log.get("input"), "input")
    response = _object(log.get("output"), "output")
    summary = _summarise_response(response.get("outputBodyJson"))
    usage = summary.usage
    metadata = _object(log.get("requestMetadata"), "requestMetadata")
    error_type = _text(log.get("errorCode"), "errorCode")
    finish_reason = summary.stop_reason
    event = {
        "schema_version": INVOCATION_V1.version,
        "event_time": _epoch_ms(
            _text(log.get("timestamp"), "timestamp", required=True), "timestamp"
        ),
        "request_id": _text(log.get("requestId"), "requestId", required=True),
        "trace_id": None,
        "span_id": None,
        **{name: _text(metadata.get(name), f"requestMetadata.{name}") for name in METADATA_FIELDS},
        "provider": PROVIDER,
        "model_id": normalise_model_id(_text(log.get("modelId"), "modelId", required=True)),
        "operation": operation,
        "region": _text(log.get("region"), "region"),
        "streaming": streaming,
        "latency_ms": summary.latency_ms,
        "ttft_ms": None,  # Bedrock logs record no time to first token
        "input_tokens": _first(
            _count(request.get("inputTokenCount"), "input.inputTokenCount"),
            _usage_count(usage, "inputTokens", "input_tokens"),
        ),
        "output_tokens": _first(
            _count(response.get("outputTokenCount"), "output.outputTokenCount"),
            _usage_count(usage, "outputTokens", "output_tokens"),
        ),
        "cache_read_input_tokens": _first(
            _count(request.get("cacheReadInputTokenCount"), "input.cacheReadInputTokenCount"),
            _usage_count(usage, "cacheReadInputTokens", "cache_read_input_tokens"),
        ),
        "cache_write_input_tokens": _first(
            _count(request.get("cacheWriteInputTokenCount"), "input.cacheWriteInputTokenCount"),
            _usage_count(usage, "cacheWriteInputTokens", "cache_creation_input_tokens"),
        ),
        "reasoning_output_tokens": None,
        # a content-filtered call completed and was billed: it stays a success and is told
        # apart by error_class, so error rates measure failures only
        "status": "error" if error_type else "success",
        "error_type": error_type,
        "error_class": classify(error_type, None, finish_reason),
        "http_status": None,  # the log records the error code, not the HTTP status
        "finish_reason": finish_reason,
        "guardrail_intervened": (
            None if finish_reason is None else finish_reason == GUARDRAIL_STOP_REASON
        ),
    }
    return event


# --- encoder: InvocationEvent -> a log record as Bedrock would write it --------------------


def _event_ms(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return _epoch_ms(value, "event_time")
        except AdapterError:
            pass
    raise AdapterError("invocation event: event_time must be epoch ms or an RFC 3339 string")


def _iso(epoch_ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=epoch_ms)
    whole = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = epoch_ms % 1000
    # Bedrock writes whole seconds; a fraction appears only when the event has one
    return f"{whole}.{millis:03d}Z" if millis else f"{whole}Z"


def _bedrock_operation(operation: str | None, streaming: bool) -> str:
    # the contract's operation names what was asked for; Bedrock's names the API used.
    # Embeddings and raw invocations go through InvokeModel, everything else through Converse.
    if operation in ("invoke", "embeddings"):
        return "InvokeModelWithResponseStream" if streaming else "InvokeModel"
    return "ConverseStream" if streaming else "Converse"


def _without_none(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is not None}


def _converse_usage(event: dict) -> dict:
    usage = {
        "inputTokens": event.get("input_tokens"),
        "outputTokens": event.get("output_tokens"),
        "cacheReadInputTokens": event.get("cache_read_input_tokens"),
        "cacheWriteInputTokens": event.get("cache_write_input_tokens"),
    }
    if usage["inputTokens"] is not None and usage["outputTokens"] is not None:
        usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
    return _without_none(usage)


def _response_body(operation: str, event: dict, stop_reason: str | None) -> object:
    latency = event.get("latency_ms")
    metrics = None if latency is None else {"latencyMs": round(latency)}
    usage = _converse_usage(event)
    if operation == "Converse":
        message = {"role": "assistant", "content": [{"text": SYNTHETIC_TEXT}]}
        return _without_none(
            {"output": {"message": message}, "stopReason": stop_reason, "metrics": metrics}
        ) | {"usage": usage}
    if operation == "ConverseStream":
        return [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": SYNTHETIC_TEXT}, "contentBlockIndex": 0}},
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": _without_none({"stopReason": stop_reason})},
            {"metadata": _without_none({"usage": usage, "metrics": metrics})},
        ]
    # InvokeModel bodies are model-specific; an Anthropic Messages response stands in for all
    return _without_none(
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": SYNTHETIC_TEXT}],
            "stop_reason": stop_reason,
            "usage": _without_none(
                {
                    "input_tokens": event.get("input_tokens"),
                    "output_tokens": event.get("output_tokens"),
                    "cache_read_input_tokens": event.get("cache_read_input_tokens"),
                    "cache_creation_input_tokens": event.get("cache_write_input_tokens"),
                }
            ),
        }
    )


def bedrock_log_from_invocation(event: dict, *, account_id: str = "123456789012") -> dict:
    """An InvocationEvent -> the model invocation log record Bedrock would have written.

    Bodies carry a placeholder instead of text. ``ROUND_TRIP_FIELDS`` lists what
    ``invocation_from_bedrock_log`` gets back; latency is written as whole milliseconds, and a
    content-filtered event is written as Bedrock writes one: a success with a telling stop
    reason, whatever its own status says.
    """
    for name in ("event_time", "request_id", "model_id"):
        if event.get(name) is None:
            raise AdapterError(f"invocation event: {name} is required")
    operation = _bedrock_operation(event.get("operation"), bool(event.get("streaming")))
    stop_reason = event.get("finish_reason")
    # Bedrock logs a blocked call as a completed one whose stop reason says so, even when the
    # event calls it a failure
    blocked = event.get("error_class") == "content_filtered" or event.get("guardrail_intervened")
    if blocked and classify(None, None, stop_reason) != "content_filtered":
        stop_reason = GUARDRAIL_STOP_REASON
    failed = event.get("status") == "error" and not blocked
    request = {
        "inputContentType": "application/json",
        "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": SYNTHETIC_TEXT}]}]},
        "inputTokenCount": event.get("input_tokens"),
        "cacheReadInputTokenCount": event.get("cache_read_input_tokens"),
        "cacheWriteInputTokenCount": event.get("cache_write_input_tokens"),
    }
    response = {
        "outputContentType": "application/json",
        # a failed call has no response body
        "outputBodyJson": None if failed else _response_body(operation, event, stop_reason),
        "outputTokenCount": event.get("output_tokens"),
    }
    metadata = {name: event.get(name) for name in METADATA_FIELDS}
    error_code = None
    if failed:
        error_code = event.get("error_type") or ERROR_CODE_OF_CLASS.get(
            event.get("error_class"), "InternalServerException"
        )
    log = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": "1.0",
        "timestamp": _iso(_event_ms(event["event_time"])),
        "accountId": account_id,
        "identity": {"arn": f"arn:aws:sts::{account_id}:assumed-role/genai-apm/traffic"},
        "region": event.get("region"),
        "requestId": event["request_id"],
        "operation": operation,
        "modelId": event["model_id"],
        "errorCode": error_code,
        "input": _without_none(request),
        "output": _without_none(response),
        "requestMetadata": _without_none(metadata) or None,
    }
    return _without_none(log)
