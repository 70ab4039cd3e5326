"""BodyEvent v1: the prompt and response of one call, redacted, kept only when
``privacy.store_bodies`` is on (docs/security.md, "Prompt and response bodies").

Bodies live apart from InvocationEvent and SpanEvent, in a topic and table of their own, so
access to them is granted separately from access to the metrics. ``request_id`` (and, for
OTLP, ``trace_id``/``span_id``) joins a body to its events.
"""

from genai_apm.schemas.contract import Contract, Field, Kind

S, L, T = Kind.STRING, Kind.LONG, Kind.TIMESTAMP

BODY_FORMATS = ("bedrock", "otlp-json")
# the Parquet table (and Athena/Glue table) of BodyEvents, under output.tables_path
BODIES_TABLE = "bodies"

BODY_V1 = Contract(
    name="BodyEvent",
    version=1,
    fields=(
        Field("schema_version", L, doc="contract version; 1"),
        Field("event_time", T, required=True, doc="when the request was sent (span start)"),
        Field(
            "request_id",
            S,
            required=True,
            doc="the InvocationEvent's request_id (OTLP: gen_ai.response.id, else the span id)",
        ),
        Field("trace_id", S, doc="OpenTelemetry trace id (hex)"),
        Field("span_id", S, doc="OpenTelemetry span id (hex)"),
        Field("source_format", S, required=True, allowed=BODY_FORMATS),
        Field("app_id", S, doc="calling application (OTLP: service.name)"),
        Field("tenant_id", S),
        Field("model_id", S),
        Field("operation", S),
        Field(
            "prompt",
            S,
            doc="request content as JSON, every string redacted: Bedrock input.inputBodyJson; "
            "OTLP an object of the span's input-side content attributes and events by name",
        ),
        Field(
            "response",
            S,
            doc="response content as JSON, every string redacted: Bedrock "
            "output.outputBodyJson; OTLP the output-side content attributes and events",
        ),
    ),
)
