"""All traffic of a spec as one stream in event-time order: plain calls, agent sessions and
the traffic that incidents add, each from its own seeded generator, merged by event time."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from genai_apm.traffic.agents import agent_traffic, runaway_traffic
from genai_apm.traffic.calls import Effects, draw_calls, invocation_events
from genai_apm.traffic.diurnal import Arrivals
from genai_apm.traffic.incidents import Incident
from genai_apm.traffic.population import Population, population
from genai_apm.traffic.spec import INVOCATION, Record, TrafficSpec, record_time

BATCH = 4096  # calls drawn at a time; fixed, so a shorter run is a prefix of a longer one
INCIDENT_STREAMS = 1000  # seed offset of the generators of incident traffic


def _plain_traffic(spec: TrafficSpec, pop: Population, effects: Effects) -> Iterator[Record]:
    rng = np.random.default_rng([spec.seed, 0])
    incident_rng = np.random.default_rng([spec.seed, 1])
    arrivals = Arrivals(spec.start_ms, spec.rate_per_s * (1 - spec.agent_share), spec.diurnal)
    while True:
        times = arrivals.next(rng, BATCH)
        apps = pop.draw_apps(rng, BATCH)
        calls = draw_calls(
            rng,
            incident_rng,
            pop,
            effects,
            spec.error_rate,
            times,
            pop.draw_models(rng, apps),
            apps,
            pop.draw_users(rng, BATCH),
        )
        for event in invocation_events(calls, pop, rng):
            yield Record(INVOCATION, event)


def _cost_spike_traffic(
    spec: TrafficSpec, pop: Population, effects: Effects, incident: Incident, stream: int
) -> Iterator[Record]:
    """The user's extra calls: ordinary apps and models, oversized prompts and answers."""
    rng = np.random.default_rng([spec.seed, stream, 0])
    incident_rng = np.random.default_rng([spec.seed, stream, 1])
    arrivals = Arrivals(incident.start_ms, incident.param("calls_per_s"), diurnal=False)
    user = pop.user_index(incident.key)
    while True:
        times = arrivals.next(rng, 256)
        times = times[times < incident.end_ms]
        if not times.size:
            return
        apps = pop.draw_apps(rng, times.size)
        calls = draw_calls(
            rng,
            incident_rng,
            pop,
            effects,
            spec.error_rate,
            times,
            pop.draw_models(rng, apps),
            apps,
            np.full(times.size, 0 if user is None else user),
            size_factor=incident.param("size_factor"),
        )
        for event in invocation_events(calls, pop, rng):
            if user is None:  # someone outside the configured population
                event.update(user_id=incident.key, tenant_id="t-external")
            yield Record(INVOCATION, event)


def _ramp_traffic(
    spec: TrafficSpec, pop: Population, effects: Effects, incident: Incident, stream: int
) -> Iterator[Record]:
    """The app's extra calls to its primary model: arrivals at the peak rate, each kept with
    probability (t - start) / (end - start), so the rate grows linearly (thinning)."""
    rng = np.random.default_rng([spec.seed, stream, 0])
    incident_rng = np.random.default_rng([spec.seed, stream, 1])
    peak = incident.param("peak_calls_per_s")
    arrivals = Arrivals(incident.start_ms, peak, diurnal=False)
    if incident.key not in pop.app_ids:
        raise ValueError(f"traffic_ramp: app_id {incident.key!r} is not in this traffic")
    app = pop.app_ids.index(incident.key)
    span = incident.end_ms - incident.start_ms
    while True:
        times = arrivals.next(rng, 256)
        if times[0] >= incident.end_ms:
            return
        keep = rng.random(times.size) < (times - incident.start_ms) / span
        times = times[keep & (times < incident.end_ms)]
        apps = np.full(times.size, app)
        calls = draw_calls(
            rng,
            incident_rng,
            pop,
            effects,
            spec.error_rate,
            times,
            np.full(times.size, pop.primary_model[app]),
            apps,
            pop.draw_users(rng, times.size),
        )
        for event in invocation_events(calls, pop, rng):
            yield Record(INVOCATION, event)


def traffic(spec: TrafficSpec) -> Iterator[Record]:
    """Every record of ``spec`` in non-decreasing event time (see ``record_time``).

    Ends after ``spec.duration_s`` of event time or ``spec.count`` InvocationEvents, whichever
    comes first; with neither it never ends. A spec that cannot be generated (an incident on
    a model or app the traffic does not have) fails here, before anything is produced.
    """
    pop = population(spec.models, spec.apps, spec.users)
    effects = Effects(pop, spec.incidents)
    streams: list[Iterator[Record]] = []
    if spec.agent_share < 1:
        streams.append(_plain_traffic(spec, pop, effects))
    if spec.agent_share > 0:
        streams.append(agent_traffic(spec, pop, effects))
    for index, incident in enumerate(spec.incidents):
        stream = INCIDENT_STREAMS + index
        if incident.kind == "cost_spike":
            streams.append(_cost_spike_traffic(spec, pop, effects, incident, stream))
        elif incident.kind == "runaway_agent_loop":
            streams.append(runaway_traffic(spec, pop, effects, incident, stream))
        elif incident.kind == "traffic_ramp":
            streams.append(_ramp_traffic(spec, pop, effects, incident, stream))
    return _bounded(spec, heapq.merge(*streams, key=record_time))


def _bounded(spec: TrafficSpec, records: Iterator[Record]) -> Iterator[Record]:
    end_ms = float("inf") if spec.duration_s is None else spec.start_ms + spec.duration_s * 1000
    calls = 0
    if spec.count == 0:
        return
    for record in records:
        if record_time(record) >= end_ms:
            return
        yield record
        if record.contract == INVOCATION:
            calls += 1
            if calls == spec.count:
                return


def invocations(spec: TrafficSpec, count: int) -> Iterator[dict]:
    """The first ``count`` InvocationEvents of ``spec`` (plain and agent calls), as dicts."""
    records = traffic(replace(spec, count=count))
    return (record.event for record in records if record.contract == INVOCATION)
