"""Ready-made incident sets, so `genai-apm generate --incidents demo` needs no key names."""

from __future__ import annotations

from genai_apm.traffic import incidents as inc
from genai_apm.traffic.population import population
from genai_apm.traffic.spec import TrafficSpec


def demo_incidents(spec: TrafficSpec, duration_s: float) -> tuple[inc.Incident, ...]:
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


PRESETS = {"demo": demo_incidents}
