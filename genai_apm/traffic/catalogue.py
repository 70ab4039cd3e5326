"""The fixed vocabulary of synthetic traffic: model profiles, app archetypes, errors, agents.

Data only. Numbers are plausible orders of magnitude for hosted models in 2025, not
measurements of any provider; what matters is that they differ between models and apps the
way real ones do, so per-key analytics have something to find.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelProfile:
    model_id: str
    provider: str  # gen_ai.provider.name
    ttft_ms: float  # time to first token for a short prompt
    prefill_ms_per_1k: float  # extra time to first token per 1k uncached input tokens
    ms_per_token: float  # decode time per output token (inverse throughput)
    sigma: float  # lognormal spread of decode time
    # "none", "read" (automatic prefix caching, no write count) or "read_write" (explicit
    # cache points, a miss reports the tokens written)
    cache: str = "none"
    reasoning: bool = False  # hidden reasoning tokens, counted in output_tokens


# Ordered by popularity: earlier models get more traffic.
MODELS = (
    ModelProfile("anthropic.claude-3-5-sonnet-20241022-v2:0", "aws.bedrock", 550, 120, 16, 0.30,
                 "read_write"),
    ModelProfile("gpt-4o-mini", "openai", 300, 40, 8, 0.30, "read"),
    ModelProfile("anthropic.claude-3-haiku-20240307-v1:0", "aws.bedrock", 280, 50, 7, 0.25),
    ModelProfile("amazon.nova-pro-v1:0", "aws.bedrock", 380, 70, 10, 0.30, "read_write"),
    ModelProfile("gpt-4o", "openai", 480, 90, 12, 0.35, "read"),
    ModelProfile("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "aws.bedrock", 650, 120, 15,
                 0.35, "read_write", reasoning=True),
    ModelProfile("gemini-2.0-flash", "gcp.gemini", 260, 30, 4, 0.30, "read"),
    ModelProfile("meta.llama3-1-70b-instruct-v1:0", "aws.bedrock", 420, 90, 14, 0.30),
    ModelProfile("o3-mini", "openai", 400, 60, 9, 0.40, "read", reasoning=True),
    ModelProfile("amazon.nova-lite-v1:0", "aws.bedrock", 220, 25, 5, 0.25, "read_write"),
    ModelProfile("mistral.mistral-large-2407-v1:0", "aws.bedrock", 480, 100, 16, 0.30),
    ModelProfile("amazon.titan-text-express-v1", "aws.bedrock", 300, 60, 11, 0.30),
)  # fmt: skip

# Providers accept cache points only on prompts of at least this many tokens.
MIN_CACHEABLE_TOKENS = 1024
REASONING_TOKENS_MEDIAN = 700
MAX_INPUT_TOKENS = 200_000


@dataclass(frozen=True)
class AppArchetype:
    name: str
    feature: str
    # a prompt is the app's fixed system prompt plus variable content (question, retrieved
    # passages, history, document), whose size is lognormal
    system_prompt_tokens: int
    content_median: float
    content_sigma: float
    output_median: float
    output_sigma: float
    max_output: int  # the app's max_tokens; longer answers stop with max_tokens / length
    streaming_share: float
    cache_hit_rate: float  # share of calls that find the system prompt in the cache


ARCHETYPES = (
    AppArchetype("support-bot", "chat", 1200, 500, 0.9, 220, 0.6, 1024, 0.9, 0.7),
    AppArchetype("rag-search", "answer", 1100, 3500, 0.4, 320, 0.5, 1024, 0.8, 0.6),
    AppArchetype("code-assist", "complete", 2500, 1500, 1.0, 420, 0.8, 4096, 0.95, 0.75),
    AppArchetype("ticket-classifier", "classify", 350, 150, 0.5, 4, 0.3, 16, 0.0, 0.9),
    AppArchetype("doc-summariser", "summarise", 400, 6500, 0.6, 380, 0.4, 1024, 0.3, 0.4),
    AppArchetype("email-drafter", "draft", 400, 350, 0.5, 380, 0.5, 2048, 0.5, 0.5),
    AppArchetype("invoice-extractor", "extract", 1500, 900, 0.5, 150, 0.4, 512, 0.0, 0.8),
    AppArchetype("translator", "translate", 300, 400, 0.8, 650, 0.7, 4096, 0.4, 0.5),
)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")

# Finish reasons in each provider's own words: (natural stop, hit max_tokens, tool call).
FINISH_REASONS = {
    "aws.bedrock": ("end_turn", "max_tokens", "tool_use"),
    "openai": ("stop", "length", "tool_calls"),
    "gcp.gemini": ("stop", "max_tokens", "tool_calls"),
}


@dataclass(frozen=True)
class ErrorKind:
    error_type: str
    error_class: str
    http_status: int | None  # None: the client gave up, no HTTP response
    weight: float  # share within the provider's errors


# Throttles dominate real error logs, then caller mistakes; timeouts, server faults and
# content-filter interventions are rarer. A blocked response still arrives as HTTP 200, with
# finish_reason saying why: those calls are status success with error_class content_filtered
# (the type names below only pick the provider's finish reason, they are never reported).
# So content filtering is not a failure: ``error_rate`` counts the other kinds only, and the
# content filter's weight relative to theirs sets how many calls it blocks besides.
ERRORS = {
    "aws.bedrock": (
        ErrorKind("ThrottlingException", "throttle", 429, 45),
        ErrorKind("ValidationException", "client", 400, 15),
        ErrorKind("AccessDeniedException", "client", 403, 5),
        ErrorKind("ModelTimeoutException", "timeout", 408, 10),
        ErrorKind("InternalServerException", "server", 500, 7),
        ErrorKind("ServiceUnavailableException", "server", 503, 6),
        ErrorKind("GuardrailIntervention", "content_filtered", 200, 12),
    ),
    "openai": (
        ErrorKind("RateLimitError", "throttle", 429, 45),
        ErrorKind("BadRequestError", "client", 400, 15),
        ErrorKind("AuthenticationError", "client", 401, 5),
        ErrorKind("APITimeoutError", "timeout", None, 10),
        ErrorKind("InternalServerError", "server", 500, 7),
        ErrorKind("ServiceUnavailableError", "server", 503, 6),
        ErrorKind("ContentFilter", "content_filtered", 200, 12),
    ),
    "gcp.gemini": (
        ErrorKind("ResourceExhausted", "throttle", 429, 45),
        ErrorKind("InvalidArgument", "client", 400, 15),
        ErrorKind("PermissionDenied", "client", 403, 5),
        ErrorKind("DeadlineExceeded", "timeout", 504, 10),
        ErrorKind("InternalServerError", "server", 500, 7),
        ErrorKind("ServiceUnavailable", "server", 503, 6),
        ErrorKind("SafetyBlocked", "content_filtered", 200, 12),
    ),
}
CONTENT_FILTER_FINISH = {"aws.bedrock": "guardrail_intervened"}  # others: "content_filter"

# A content filter blocks either the prompt, before the model runs (no output, no first
# token), or the answer, part way through (the tokens generated so far are reported and billed).
PROMPT_BLOCKED_SHARE = 0.6
# A guardrail reads the whole prompt it blocks: its check takes this much longer per 1k tokens.
GUARDRAIL_MS_PER_1K = 20.0

# How long a failed call takes, by class: (median ms, lognormal sigma). Throttles and bad
# requests are rejected at the front door; timeouts wait for the client's deadline.
# content_filtered: a blocked prompt's guardrail check, before GUARDRAIL_MS_PER_1K.
ERROR_LATENCY = {
    "throttle": (35.0, 0.5),
    "client": (90.0, 0.5),
    "timeout": (30_000.0, 0.15),
    "server": (800.0, 0.8),
    "content_filtered": (350.0, 0.4),
}


@dataclass(frozen=True)
class Tool:
    name: str
    median_ms: float
    failure_rate: float


@dataclass(frozen=True)
class Agent:
    name: str
    service_name: str
    system_prompt_tokens: int
    tools: tuple[Tool, ...]
    weight: float


AGENTS = (
    Agent("travel-planner", "travel-agent", 2400, (
        Tool("search_flights", 900, 0.04), Tool("search_hotels", 700, 0.04),
        Tool("get_weather", 250, 0.02), Tool("book_trip", 1500, 0.06),
    ), 3),
    Agent("support-triage", "support-agent", 1800, (
        Tool("lookup_order", 180, 0.02), Tool("search_kb", 350, 0.03),
        Tool("refund_order", 600, 0.05), Tool("escalate_ticket", 400, 0.02),
    ), 4),
    Agent("code-reviewer", "review-agent", 3200, (
        Tool("read_file", 40, 0.01), Tool("search_code", 220, 0.03),
        Tool("run_tests", 8000, 0.10),
    ), 2),
    Agent("research-assistant", "research-agent", 2000, (
        Tool("web_search", 1200, 0.05), Tool("fetch_url", 900, 0.08),
        Tool("extract_tables", 300, 0.03),
    ), 2),
)  # fmt: skip
TOOL_ERRORS = ("TimeoutError", "HTTPError", "ToolExecutionError")
