"""Deterministic synthetic invocation traffic: seeded, realistic enough to exercise the analytics.

Latency is lognormal and grows with output tokens; streaming calls get a time to first token;
a few percent of calls fail with a realistic error mix. Event time advances at ``rate``
events per second of *event time*, independent of how fast the events are produced, so a
few minutes of traffic can be generated in seconds.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

# (model_id, provider, base latency ms, ms per output token, mean output tokens)
MODELS = (
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "aws.bedrock", 450.0, 18.0, 350),
    ("anthropic.claude-3-haiku-20240307-v1:0", "aws.bedrock", 220.0, 7.0, 250),
    ("amazon.titan-text-express-v1", "aws.bedrock", 300.0, 11.0, 200),
    ("meta.llama3-70b-instruct-v1:0", "aws.bedrock", 380.0, 14.0, 300),
    ("gpt-4o-mini", "openai", 260.0, 9.0, 280),
)
APPS = ("support-bot", "code-assist", "search-summarise", "email-drafter")
FEATURES = ("chat", "summarise", "classify", "draft")
# (error_type, error_class, http_status, weight)
ERRORS = (
    ("ThrottlingException", "throttle", 429, 5),
    ("ValidationException", "client", 400, 2),
    ("ModelTimeoutException", "timeout", 408, 1),
    ("InternalServerException", "server", 500, 1),
    ("ServiceUnavailableException", "server", 503, 1),
)


@dataclass(frozen=True)
class TrafficSpec:
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed epoch, so runs repeat
    rate_per_s: float = 50.0  # events per second of event time
    error_rate: float = 0.04
    users: int = 200
    seed: int = 7


def invocations(spec: TrafficSpec, count: int) -> Iterator[dict]:
    """``count`` native v1 InvocationEvents in event-time order."""
    rng = random.Random(spec.seed)
    ids = random.Random(spec.seed + 1)
    error_weights = [e[3] for e in ERRORS]
    t = float(spec.start_ms)
    for _ in range(count):
        t += rng.expovariate(spec.rate_per_s) * 1000.0
        model_id, provider, base_ms, per_token_ms, mean_out = rng.choice(MODELS)
        app = rng.choice(APPS)
        streaming = rng.random() < 0.6
        input_tokens = int(rng.lognormvariate(math.log(900), 0.8))
        output_tokens = max(1, int(rng.lognormvariate(math.log(mean_out), 0.6)))
        latency = (base_ms + per_token_ms * output_tokens) * rng.lognormvariate(0, 0.25)
        event = {
            "schema_version": 1,
            "event_time": int(t),
            "request_id": str(uuid.UUID(int=ids.getrandbits(128), version=4)),
            "session_id": f"s-{rng.randrange(spec.users * 3)}",
            "app_id": app,
            "user_id": f"u-{rng.randrange(spec.users)}",
            "tenant_id": "t-1",
            "feature": rng.choice(FEATURES),
            "provider": provider,
            "model_id": model_id,
            "operation": "chat",
            "region": "us-east-1",
            "streaming": streaming,
            "latency_ms": round(latency, 3),
            "ttft_ms": round(base_ms * rng.lognormvariate(0, 0.3), 3) if streaming else None,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "status": "success",
            "error_type": None,
            "error_class": None,
            "http_status": 200,
            "finish_reason": "end_turn",
            "guardrail_intervened": False,
        }
        if rng.random() < spec.error_rate:
            error_type, error_class, http_status, _ = rng.choices(ERRORS, error_weights)[0]
            event.update(
                status="error",
                error_type=error_type,
                error_class=error_class,
                http_status=http_status,
                output_tokens=0,
                ttft_ms=None,
                finish_reason=None,
                latency_ms=round(rng.lognormvariate(math.log(60), 0.5), 3),
            )
        yield event
