"""InvocationEvent v1: one model call. The single definition every other form is generated from."""

from genai_apm.schemas.contract import Contract, Field, Kind

S, L, D, B, T = Kind.STRING, Kind.LONG, Kind.DOUBLE, Kind.BOOLEAN, Kind.TIMESTAMP

ERROR_CLASSES = ("client", "server", "throttle", "timeout", "content_filtered")

INVOCATION_V1 = Contract(
    name="InvocationEvent",
    version=1,
    fields=(
        Field("schema_version", L, doc="contract version; 1"),
        Field("event_time", T, required=True, doc="when the request was sent"),
        Field("request_id", S, required=True, doc="provider request id, unique per call"),
        Field("trace_id", S, doc="OpenTelemetry trace id (hex)"),
        Field("span_id", S, doc="OpenTelemetry span id (hex)"),
        Field("session_id", S, otel="gen_ai.conversation.id", doc="conversation or agent session"),
        Field("app_id", S, doc="calling application"),
        Field("user_id", S, doc="pseudonymous end user"),
        Field("tenant_id", S),
        Field("feature", S, doc="product feature that made the call"),
        Field("provider", S, otel="gen_ai.provider.name", doc="e.g. aws.bedrock, openai"),
        Field("model_id", S, required=True, otel="gen_ai.request.model"),
        Field(
            "operation",
            S,
            otel="gen_ai.operation.name",
            doc="chat, converse, invoke, embeddings, ...",
        ),
        Field("region", S),
        Field("streaming", B),
        Field("latency_ms", D, minimum=0, doc="request sent to last token"),
        Field("ttft_ms", D, minimum=0, doc="time to first token; streaming calls only"),
        Field("input_tokens", L, minimum=0, otel="gen_ai.usage.input_tokens"),
        Field("output_tokens", L, minimum=0, otel="gen_ai.usage.output_tokens"),
        Field("cache_read_input_tokens", L, minimum=0, otel="gen_ai.usage.cache_read.input_tokens"),
        Field("cache_write_input_tokens", L, minimum=0),
        Field("reasoning_output_tokens", L, minimum=0),
        Field("status", S, required=True, allowed=("success", "error")),
        Field("error_type", S, otel="error.type", doc="exception name, e.g. ThrottlingException"),
        Field("error_class", S, allowed=ERROR_CLASSES),
        Field("http_status", L, minimum=0),
        Field("finish_reason", S, otel="gen_ai.response.finish_reasons", doc="the first one"),
        Field("guardrail_intervened", B),
    ),
)
