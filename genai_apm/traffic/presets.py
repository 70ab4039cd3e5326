"""Ready-made incident sets, so `genai-apm generate --incidents demo` needs no key names."""

from __future__ import annotations

from genai_apm.traffic import incidents as inc
from genai_apm.traffic.population import population
from genai_apm.traffic.spec import TrafficSpec


def demo_incidents(spec: TrafficSpec, duration_s: float, settings=None) -> tuple[inc.Incident, ...]:
    """One incident of each kind, in turn, on keys the traffic really has."""
    pop = population(spec.models, spec.apps, spec.users)
    span_ms = duration_s * 1000

    def at(a: float, b: float) -> tuple[int, int]:
        return spec.start_ms + int(a * span_ms), spec.start_ms + int(b * span_ms)

    found = [
        inc.latency_regression(pop.model_ids[0], *at(0.10, 0.25)),
        inc.input_token_spike(pop.app_ids[min(1, pop.plain_apps - 1)], *at(0.25, 0.40)),
        inc.throttling_storm(pop.model_ids[min(1, len(pop.model_ids) - 1)], *at(0.40, 0.50)),
        inc.content_filter_spike(pop.app_ids[min(2, pop.plain_apps - 1)], *at(0.50, 0.60)),
        inc.cost_spike(pop.user_id(3 % pop.users), *at(0.60, 0.70)),
    ]
    if spec.agent_share > 0:
        found.append(inc.runaway_agent_loop("conv-runaway-demo", *at(0.70, 0.85)))
    return tuple(found)


RAMP_APP = 3  # ticket-classifier: not the top user of its model until it ramps
RAMP_FROM, RAMP_CROSSES = 0.4, 0.75  # of the run; of the ramp, where the quota is reached
STORM_SHARE = 0.8


def _quota_use(records, pop, quota, model: int, region: str, burndown: float):
    """(time_ms of the first call that takes its minute over the quota, or None) and the
    peak use per minute (tokens, requests) of the quota's model and region."""
    from genai_apm.quotas import quota_tokens

    tokens: dict[int, float] = {}
    requests: dict[int, int] = {}
    first = None
    for record in records:
        e = record.event
        if record.contract != "InvocationEvent" or e["model_id"] != pop.model_ids[model]:
            continue
        if e["region"] != region:
            continue
        minute = e["event_time"] // 60_000
        used = quota_tokens(
            e["input_tokens"] or 0,
            e["cache_read_input_tokens"] or 0,
            e["output_tokens"] or 0,
            burndown,
        )
        tokens[minute] = tokens.get(minute, 0.0) + used
        requests[minute] = requests.get(minute, 0) + 1
        over = tokens[minute] > quota.tpm or (
            quota.rpm is not None and requests[minute] > quota.rpm
        )
        if first is None and over:
            first = e["event_time"]
    return first, max(tokens.values(), default=0.0), max(requests.values(), default=0)


def quota_ramp_incidents(
    spec: TrafficSpec, duration_s: float, settings=None
) -> tuple[inc.Incident, ...]:
    """Traffic growing into a throttling storm: one app ramps its calls to its primary model
    from 40% of the run on, so that its region's use of the model's quota (the quota table of
    ``settings``) passes 100% about three quarters into the ramp; from the first call over the
    quota, the provider throttles most of the model's calls (a throttling_storm label, whose
    start is the first throttled call when the traffic has no other errors)."""
    from dataclasses import replace

    from genai_apm import quotas
    from genai_apm.traffic.stream import traffic

    table = quotas.load(settings.quota.quota_file if settings is not None else None)
    pop = population(spec.models, spec.apps, spec.users)
    app = min(RAMP_APP, pop.plain_apps - 1)
    model = int(pop.primary_model[app])
    provider, region = pop.providers[model], pop.regions[app]
    quota = table.quota_for(provider, pop.model_ids[model], region)
    if quota is None:
        raise ValueError(
            f"quota-ramp: the quota table {table.origin} has no row for {provider} "
            f"{pop.model_ids[model]} in {region}"
        )
    start = spec.start_ms + int(RAMP_FROM * duration_s * 1000)
    end = spec.start_ms + int(duration_s * 1000)
    clean = replace(spec, duration_s=duration_s, count=None, incidents=())
    _, base_tokens, base_requests = _quota_use(
        traffic(clean), pop, quota, model, region, quota.output_burndown
    )
    # the ramp app's quota tokens per call, measured on a short ramp of its own
    probe = inc.traffic_ramp(pop.app_ids[app], spec.start_ms, spec.start_ms + 600_000, 2.0)
    probe_calls = [
        r.event
        for r in traffic(replace(spec, duration_s=600, count=None, incidents=(probe,)))
        if r.event.get("app_id") == pop.app_ids[app]
        and r.event.get("model_id") == pop.model_ids[model]
    ]
    per_call = sum(
        quotas.quota_tokens(
            e["input_tokens"] or 0,
            e["cache_read_input_tokens"] or 0,
            e["output_tokens"] or 0,
            quota.output_burndown,
        )
        for e in probe_calls
    ) / max(1, len(probe_calls))
    # calls per minute the ramp adds at its crossing point: ramp rate x fraction
    needed = [(quota.tpm - base_tokens) / max(per_call, 1.0)]
    if quota.rpm is not None:
        needed.append(quota.rpm - base_requests)
    if min(needed) <= 0:
        raise ValueError(f"quota-ramp: the traffic alone already exceeds the quota of {quota}")
    peak_per_s = min(needed) / 60 / RAMP_CROSSES
    ramp = inc.traffic_ramp(pop.app_ids[app], start, end, peak_per_s)
    ramped = replace(spec, duration_s=duration_s, count=None, incidents=(ramp,))
    first, _, _ = _quota_use(traffic(ramped), pop, quota, model, region, quota.output_burndown)
    if first is None:
        raise ValueError("quota-ramp: the ramp never reached the quota")
    storm = inc.throttling_storm(pop.model_ids[model], first, end, STORM_SHARE)
    return ramp, storm


PRESETS = {"demo": demo_incidents, "quota-ramp": quota_ramp_incidents}
