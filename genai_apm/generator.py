"""Deterministic synthetic invocation traffic: seeded, realistic enough to exercise the analytics.

The implementation lives in ``genai_apm.traffic``; this module keeps the original entry
points (``TrafficSpec``, ``invocations(spec, count)``) where the CLI, demo and tests import
them, beside the rest of the package's API. Event time advances at ``rate_per_s``
InvocationEvents per second of *event time*, independent of how fast events are produced,
so minutes of traffic take seconds to make.
"""

from genai_apm.traffic import (
    DIURNAL_CURVE,
    INVOCATION,
    SPAN,
    Incident,
    Record,
    TrafficSpec,
    content_filter_spike,
    cost_spike,
    input_token_spike,
    invocations,
    labels_json,
    latency_regression,
    load_labels,
    paced,
    record_time,
    runaway_agent_loop,
    throttling_storm,
    traffic,
    with_disorder,
    with_progress,
)

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
    "with_disorder",
    "with_progress",
]
