"""The model-call model: given who calls which model when, draw everything else, vectorised.

One batch of calls is a set of numpy columns (``Calls``); ``invocation_events`` turns them
into InvocationEvent v1 dicts. Plain traffic draws thousands of calls per batch; agents draw
their chat calls one at a time (each depends on the previous call's end), through the same
code, so incidents and distributions are identical for both.

How a call is shaped:
- prompt = the app's system prompt + lognormal content; prompt caching (where the model
  supports it and the system prompt is long enough to cache) reads or writes that prefix.
  ``input_tokens`` includes cached tokens, as the OpenTelemetry GenAI conventions ask.
- answer = lognormal per app, cut at the app's max_tokens (finish reason max_tokens/length);
  reasoning models add hidden reasoning tokens, counted in ``output_tokens``.
- time to first token = base + prefill of the uncached prompt + reasoning time;
  latency = TTFT + decode time of the visible answer, so TTFT < latency always.
- errors: ``error_rate`` of calls fail (status error) with the provider's error mix; failed
  calls return fast (or at the deadline, for timeouts) and report no tokens.
- content filtering is not a failure: a blocked call is status success, HTTP 200, with
  error_class content_filtered and the provider's filter finish reason. Besides the failures,
  ``error_rate`` x (the filter's weight / the failures' weight) of calls are blocked (so
  ``error_rate=0`` is clean traffic). A filter blocks the prompt (``PROMPT_BLOCKED_SHARE``:
  the model never runs, so no output, no first token, no cache use; the guardrail's check
  takes longer for longer prompts) or cuts the answer part way (the model ran: the tokens so
  far are reported, timed like any answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genai_apm.traffic.catalogue import (
    CONTENT_FILTER_FINISH,
    ERROR_LATENCY,
    ERRORS,
    FINISH_REASONS,
    GUARDRAIL_MS_PER_1K,
    MAX_INPUT_TOKENS,
    MIN_CACHEABLE_TOKENS,
    PROMPT_BLOCKED_SHARE,
    REASONING_TOKENS_MEDIAN,
    ErrorKind,
)
from genai_apm.traffic.ids import uuid4s
from genai_apm.traffic.incidents import Incident
from genai_apm.traffic.population import CACHE_MODES, PROVIDERS, Population

NOT_REPORTED = -1  # token counts the provider does not report become null
TTFT_SIGMA = 0.25
SESSION_BLOCK_MS = 1_800_000  # a plain user's calls within half an hour form one session

# All providers' errors in one table, so a call's error is one integer (-1: none).
ERROR_TABLE: tuple[ErrorKind, ...] = tuple(e for p in PROVIDERS for e in ERRORS[p])
_IS_FILTER = np.array([e.error_class == "content_filtered" for e in ERROR_TABLE])
_ERROR_LOG_MEDIAN = np.log([ERROR_LATENCY[e.error_class][0] for e in ERROR_TABLE])
_ERROR_SIGMA = np.array([ERROR_LATENCY[e.error_class][1] for e in ERROR_TABLE])


@dataclass(frozen=True)
class _ProviderErrors:
    failures: np.ndarray  # table indices of the kinds that fail a call
    cdf: np.ndarray  # of their weights
    throttle: int
    content_filter: int
    filtered_per_failure: float  # content-filter weight / failure weight


def _provider_errors(provider: str) -> _ProviderErrors:
    kinds = ERRORS[provider]
    first = ERROR_TABLE.index(kinds[0])
    classes = [e.error_class for e in kinds]
    failing = [i for i, c in enumerate(classes) if c != "content_filtered"]
    weights = np.array([kinds[i].weight for i in failing])
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    blocked = classes.index("content_filtered")
    return _ProviderErrors(
        failures=first + np.array(failing),
        cdf=cdf,
        throttle=first + classes.index("throttle"),
        content_filter=first + blocked,
        filtered_per_failure=kinds[blocked].weight / weights.sum(),
    )


_PROVIDER_ERRORS = [_provider_errors(p) for p in PROVIDERS]
_THROTTLE = np.array([e.throttle for e in _PROVIDER_ERRORS])
_CONTENT_FILTER = np.array([e.content_filter for e in _PROVIDER_ERRORS])
_FILTERED_PER_FAILURE = np.array([e.filtered_per_failure for e in _PROVIDER_ERRORS])


@dataclass
class Calls:
    time_ms: np.ndarray  # float epoch ms
    model: np.ndarray
    app: np.ndarray
    user: np.ndarray
    streaming: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cache_read: np.ndarray  # NOT_REPORTED where the model has no prompt caching
    cache_write: np.ndarray
    reasoning: np.ndarray
    ttft_ms: np.ndarray  # nan: not streaming, failed, or the prompt was blocked
    latency_ms: np.ndarray
    # index into ERROR_TABLE, -1 for neither: a failure, or a content filter's intervention
    # (which is no failure: the call is reported as a success)
    error: np.ndarray
    truncated: np.ndarray

    def __len__(self) -> int:
        return self.time_ms.size


class Effects:
    """The incidents that change calls, resolved to population indices once."""

    def __init__(self, pop: Population, incidents: Sequence[Incident]):
        self._by_kind: dict[str, list[tuple[int, int, int, float]]] = {}
        for i in incidents:
            if i.kind in ("latency_regression", "throttling_storm"):
                names, param = pop.model_ids, "factor" if "latency" in i.kind else "share"
            elif i.kind in ("input_token_spike", "content_filter_spike"):
                names, param = pop.app_ids, "factor" if "token" in i.kind else "share"
            else:
                continue  # these add traffic of their own rather than change calls
            if i.key not in names:
                raise ValueError(
                    f"{i.kind}: {i.key_field} {i.key!r} is not in this traffic "
                    f"(has {len(names)}: {', '.join(names[:5])}, ...)"
                )
            self._by_kind.setdefault(i.kind, []).append(
                (names.index(i.key), i.start_ms, i.end_ms, i.param(param))
            )

    def masks(self, kind: str, keys: np.ndarray, time_ms: np.ndarray):
        """(mask, parameter) for each incident of ``kind``."""
        for key, start, end, param in self._by_kind.get(kind, ()):
            yield (keys == key) & (time_ms >= start) & (time_ms < end), param


def draw_calls(
    rng: np.random.Generator,
    incident_rng: np.random.Generator,
    pop: Population,
    effects: Effects,
    error_rate: float,
    time_ms: np.ndarray,
    model: np.ndarray,
    app: np.ndarray,
    user: np.ndarray,
    *,
    size_factor: float = 1.0,
    content_tokens: np.ndarray | None = None,
    answer_tokens: np.ndarray | None = None,
    streaming: np.ndarray | None = None,
) -> Calls:
    """Draw a batch of calls. The keyword arguments let agents supply their own prompt and
    answer sizes; ``size_factor`` scales both (cost spikes).

    ``rng`` draws the same amount whatever the incidents; incidents draw from
    ``incident_rng`` only. So traffic with an incident equals traffic without it except in
    the calls the incident covers, which is how the tests prove incidents stay in bounds.
    """
    n = time_ms.size
    provider = pop.provider_index[model]
    if streaming is None:
        streaming = rng.random(n) < pop.streaming_share[app]

    # prompt
    if content_tokens is None:
        content = np.exp(rng.normal(pop.content_log_median[app], pop.content_sigma[app]))
    else:
        content = content_tokens.astype(float)
    content = content * size_factor
    for mask, factor in effects.masks("input_token_spike", app, time_ms):
        content = np.where(mask, content * factor, content)
    system = pop.system_prompt_tokens[app]
    input_tokens = np.minimum(system + np.maximum(1, np.rint(content)), MAX_INPUT_TOKENS)
    input_tokens = input_tokens.astype(np.int64)

    # answer
    if answer_tokens is None:
        raw = np.exp(rng.normal(pop.output_log_median[app], pop.output_sigma[app]))
        truncated = raw > pop.max_output[app]
        visible = np.clip(np.ceil(raw), 1, pop.max_output[app]).astype(np.int64)
    else:
        truncated = np.zeros(n, dtype=bool)
        visible = np.maximum(1, answer_tokens).astype(np.int64)
    visible = np.rint(visible * size_factor).astype(np.int64)
    thinks = pop.reasoning[model]
    reasoning = np.where(
        thinks, np.rint(np.exp(rng.normal(np.log(REASONING_TOKENS_MEDIAN), 0.9, n))), 0
    ).astype(np.int64)

    # prompt cache: the system prompt is the cached prefix
    mode = pop.cache_mode[model]
    cacheable = (mode > 0) & (system >= MIN_CACHEABLE_TOKENS)
    hit = cacheable & (rng.random(n) < pop.cache_hit_rate[app])
    cache_read = np.where(hit, system, 0)
    writes = mode == CACHE_MODES.index("read_write")
    cache_write = np.where(cacheable & ~hit & writes, system, 0)
    cache_read = np.where(mode > 0, cache_read, NOT_REPORTED)
    cache_write = np.where(writes, cache_write, NOT_REPORTED)

    # outcome: a failure, a content filter's intervention, or neither
    error = np.full(n, -1)
    outcome = rng.random(n)
    pick = rng.random(n)
    filter_rate = np.minimum(error_rate * _FILTERED_PER_FAILURE[provider], 1 - error_rate)
    for p, errors in enumerate(_PROVIDER_ERRORS):
        chosen = (outcome < error_rate) & (provider == p)
        error[chosen] = errors.failures[np.searchsorted(errors.cdf, pick[chosen], side="right")]
    error = np.where(
        (outcome >= error_rate) & (outcome < error_rate + filter_rate),
        _CONTENT_FILTER[provider],
        error,
    )
    for mask, share in effects.masks("throttling_storm", model, time_ms):
        struck = mask & (incident_rng.random(n) < share)
        error = np.where(struck, _THROTTLE[provider], error)
    # the filter sees only the calls that get through to the model: failures stay failures
    for mask, share in effects.masks("content_filter_spike", app, time_ms):
        struck = mask & (incident_rng.random(n) < share)
        reaches_model = (error < 0) | _IS_FILTER[np.maximum(error, 0)]
        error = np.where(struck & reaches_model, _CONTENT_FILTER[provider], error)
    kind = np.maximum(error, 0)
    filtered = (error >= 0) & _IS_FILTER[kind]
    failed = (error >= 0) & ~filtered
    # drawn for every call, whatever its outcome, so the draws do not depend on the incidents
    prompt_blocked = filtered & (rng.random(n) < PROMPT_BLOCKED_SHARE)
    answer_cut = rng.random(n)  # the share of the answer made before a filter stopped it
    ttft_noise = rng.normal(0.0, TTFT_SIGMA, n)
    decode_noise = rng.normal(0.0, pop.sigma[model])
    error_noise = rng.normal(0.0, 1.0, n)

    # what the provider reports: nothing for a failure; the prompt alone for a blocked prompt;
    # the prompt and the part of the answer made so far for a blocked answer
    no_model = failed | prompt_blocked  # calls the model never ran
    answer_blocked = filtered & ~prompt_blocked
    visible = np.where(answer_blocked, np.maximum(1, np.ceil(visible * answer_cut)), visible)
    visible = np.where(no_model, 0, visible).astype(np.int64)
    reasoning = np.where(no_model, 0, reasoning)
    cache_read = np.where(no_model & (cache_read > 0), 0, cache_read)
    cache_write = np.where(no_model & (cache_write > 0), 0, cache_write)
    truncated = truncated & (error < 0)

    # timing of the calls the model served (a blocked answer too, up to where it stopped)
    uncached = input_tokens - np.maximum(cache_read, 0)
    per_token = pop.ms_per_token[model]
    ttft = pop.ttft_ms[model] + pop.prefill_ms_per_token[model] * uncached + per_token * reasoning
    ttft = ttft * np.exp(ttft_noise)
    latency = ttft + per_token * visible * np.exp(decode_noise)
    for mask, factor in effects.masks("latency_regression", model, time_ms):
        ttft = np.where(mask, ttft * factor, ttft)
        latency = np.where(mask, latency * factor, latency)
    # the rest take their own time: a failure by its class, a guardrail by the prompt it read
    error_latency = np.exp(_ERROR_LOG_MEDIAN[kind] + _ERROR_SIGMA[kind] * error_noise)
    guardrail = error_latency + GUARDRAIL_MS_PER_1K * input_tokens / 1000
    latency = np.where(failed, error_latency, np.where(prompt_blocked, guardrail, latency))
    input_tokens = np.where(failed, 0, input_tokens)

    return Calls(
        time_ms=time_ms,
        model=model,
        app=app,
        user=user,
        streaming=streaming,
        input_tokens=input_tokens,
        output_tokens=visible + reasoning,
        cache_read=cache_read,
        cache_write=cache_write,
        reasoning=np.where(thinks, reasoning, NOT_REPORTED),
        ttft_ms=np.where(streaming & ~no_model, ttft, np.nan),
        latency_ms=latency,
        error=error,
        truncated=truncated,
    )


def _nullable(values: np.ndarray, missing: np.ndarray) -> list:
    out = values.astype(object)
    out[missing] = None
    return out.tolist()


def finish_reason(provider: str, error: int, truncated: bool, tool_call: bool = False):
    if error >= 0:
        if ERROR_TABLE[error].error_class != "content_filtered":
            return None
        return CONTENT_FILTER_FINISH.get(provider, "content_filter")
    stop, length, tool = FINISH_REASONS[provider]
    return tool if tool_call else length if truncated else stop


def invocation_events(calls: Calls, pop: Population, rng: np.random.Generator) -> list[dict]:
    """InvocationEvent v1 dicts, in the batch's order, with every contract field present."""
    n = len(calls)
    times = np.floor(calls.time_ms).astype(np.int64)
    request_ids = uuid4s(rng, n)
    sessions = (times // SESSION_BLOCK_MS).tolist()
    ttft = np.round(calls.ttft_ms, 3)
    columns = zip(
        times.tolist(),
        request_ids,
        sessions,
        calls.model.tolist(),
        calls.app.tolist(),
        calls.user.tolist(),
        calls.streaming.tolist(),
        np.round(calls.latency_ms, 3).tolist(),
        _nullable(ttft, np.isnan(ttft)),
        calls.input_tokens.tolist(),
        calls.output_tokens.tolist(),
        _nullable(calls.cache_read, calls.cache_read < 0),
        _nullable(calls.cache_write, calls.cache_write < 0),
        _nullable(calls.reasoning, calls.reasoning < 0),
        calls.error.tolist(),
        calls.truncated.tolist(),
        strict=True,
    )
    events = []
    for t, rid, block, m, a, u, stream, lat, tt, inp, out, cr, cw, rsn, err, trunc in columns:
        provider = pop.providers[m]
        kind = ERROR_TABLE[err] if err >= 0 else None
        filtered = kind is not None and kind.error_class == "content_filtered"
        events.append(
            {
                "schema_version": 1,
                "event_time": t,
                "request_id": rid,
                "trace_id": None,
                "span_id": None,
                "session_id": f"s-{u}-{block}",
                "app_id": pop.app_ids[a],
                "user_id": pop.user_id(u),
                "tenant_id": pop.tenant_id(u),
                "feature": pop.features[a],
                "provider": provider,
                "model_id": pop.model_ids[m],
                "operation": "chat",
                "region": pop.regions[a],
                "streaming": stream,
                "latency_ms": lat,
                "ttft_ms": tt,
                "input_tokens": inp,
                "output_tokens": out,
                "cache_read_input_tokens": cr,
                "cache_write_input_tokens": cw,
                "reasoning_output_tokens": rsn,
                # a blocked answer is still a successful HTTP call, as Bedrock and OpenAI
                # report it (no errorCode, a stop reason): counted apart, not as an error
                "status": "success" if kind is None or filtered else "error",
                "error_type": None if filtered else kind and kind.error_type,
                "error_class": kind and kind.error_class,
                "http_status": 200 if kind is None else kind.http_status,
                "finish_reason": finish_reason(provider, err, trunc),
                "guardrail_intervened": filtered,
            }
        )
    return events
