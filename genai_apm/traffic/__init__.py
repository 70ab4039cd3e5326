"""Deterministic synthetic traffic for genai-apm: invocations, agent traces, incidents.

    spec = TrafficSpec(rate_per_s=200, duration_s=3600, diurnal=True, agent_share=0.2,
                       incidents=(latency_regression("gpt-4o", t0, t1),))
    for contract, event in traffic(spec): ...     # "InvocationEvent" | "SpanEvent", dict
    Path("labels.json").write_text(labels_json(spec.incidents))

Pure computation: no I/O, no wall clock except in ``paced``.
"""

from genai_apm.traffic.delivery import paced, with_disorder, with_progress
from genai_apm.traffic.diurnal import DIURNAL_CURVE
from genai_apm.traffic.incidents import (
    Incident,
    content_filter_spike,
    cost_spike,
    input_token_spike,
    labels_json,
    latency_regression,
    load_labels,
    runaway_agent_loop,
    throttling_storm,
    traffic_ramp,
)
from genai_apm.traffic.spec import INVOCATION, SPAN, Record, TrafficSpec, record_time
from genai_apm.traffic.stream import invocations, traffic

__all__ = [
    "DIURNAL_CURVE",
    "INVOCATION",
    "SPAN",
    "Incident",
    "Record",
    "TrafficSpec",
    "content_filter_spike",
    "cost_spike",
    "input_token_spike",
    "invocations",
    "labels_json",
    "latency_regression",
    "load_labels",
    "paced",
    "record_time",
    "runaway_agent_loop",
    "throttling_storm",
    "traffic",
    "traffic_ramp",
    "with_disorder",
    "with_progress",
]
