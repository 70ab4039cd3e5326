"""SpanEvent v1: one OpenTelemetry span, flattened, with the GenAI attributes as columns.

Field names are snake_case (they become SQL, Parquet and Athena columns); ``otel`` on each
field names the attribute it carries under the GenAI semantic conventions pinned in
``OTEL_SEMCONV_VERSION``.
"""

from genai_apm.schemas.contract import Contract, Field, Kind

S, L, D, T = Kind.STRING, Kind.LONG, Kind.DOUBLE, Kind.TIMESTAMP

OTEL_SEMCONV_VERSION = "1.37.0"
SPAN_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")

SPAN_V1 = Contract(
    name="SpanEvent",
    version=1,
    fields=(
        Field("schema_version", L, doc="contract version; 1"),
        Field("trace_id", S, required=True, doc="32 hex digits"),
        Field("span_id", S, required=True, doc="16 hex digits"),
        Field("parent_span_id", S, doc="empty or null for a root span"),
        Field("name", S, required=True),
        Field("kind", S, allowed=SPAN_KINDS),
        Field("start_time", T, required=True),
        Field("end_time", T, required=True),
        Field("duration_ms", D, minimum=0, doc="end_time - start_time"),
        Field("status_code", S, allowed=STATUS_CODES),
        Field("status_message", S),
        Field("service_name", S, otel="service.name", doc="resource attribute"),
        Field(
            "operation",
            S,
            otel="gen_ai.operation.name",
            doc="chat, text_completion, embeddings, invoke_agent, execute_tool, ...",
        ),
        Field("provider", S, otel="gen_ai.provider.name"),
        Field("model_id", S, otel="gen_ai.request.model"),
        Field("response_model", S, otel="gen_ai.response.model"),
        Field("agent_name", S, otel="gen_ai.agent.name"),
        Field("agent_id", S, otel="gen_ai.agent.id"),
        Field("tool_name", S, otel="gen_ai.tool.name"),
        Field("tool_call_id", S, otel="gen_ai.tool.call.id"),
        Field("conversation_id", S, otel="gen_ai.conversation.id"),
        Field("input_tokens", L, minimum=0, otel="gen_ai.usage.input_tokens"),
        Field("output_tokens", L, minimum=0, otel="gen_ai.usage.output_tokens"),
        Field("cache_read_input_tokens", L, minimum=0, otel="gen_ai.usage.cache_read.input_tokens"),
        Field("finish_reasons", S, otel="gen_ai.response.finish_reasons", doc="comma-separated"),
        Field("error_type", S, otel="error.type"),
    ),
)
