"""Agent traces: SpanEvents forming one trace per agent turn, plus an InvocationEvent for
every model call the agent makes.

A session (one conversation, ``conversation_id`` = the calls' ``session_id``) has a few
turns separated by the user's think time. Each turn is a trace:

    invoke_agent {agent}            root, INTERNAL; OK, or ERROR with the cause
      chat {model}                  CLIENT; finish reason tool_use / tool_calls ...
      execute_tool {tool}           INTERNAL; some fail, and the agent carries on
      chat {model}                  ... until a chat answers without asking for a tool

Children run one after another inside the root's time range. Span times are whole
milliseconds and ``duration_ms == end_time - start_time`` exactly; the matching
InvocationEvent has the chat span's trace and span ids, ``event_time = start_time`` and
``latency_ms = duration_ms``. Chat calls go through the same call model as plain traffic,
so incidents reach them too. Throttled and server-failed calls are retried (each attempt
is a span), as agent frameworks do; other failures end the turn, its root ERROR with the
call's error type. A content-filtered call is not a failure (its chat span stays UNSET, with
no error type): the filter's verdict is the model's answer, which ends the turn (see
``_chat_done``).

Root spans carry the turn's summed token usage (the conventions allow it on invoke_agent):
sum chat spans, not all spans, to count tokens once.

Sessions are simulated in groups, in lock step: each round draws the next chat call of
every session in the group as one vectorised batch, since a call's start depends on the
previous call's end and drawing calls one by one would cost ten times as much.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from genai_apm.schemas.span import SPAN_V1
from genai_apm.traffic.calls import ERROR_TABLE, Effects, draw_calls, invocation_events
from genai_apm.traffic.catalogue import AGENTS, FINISH_REASONS, TOOL_ERRORS, Agent, Tool
from genai_apm.traffic.diurnal import Arrivals
from genai_apm.traffic.incidents import Incident
from genai_apm.traffic.population import Population
from genai_apm.traffic.spec import INVOCATION, SPAN, Record, TrafficSpec, record_time

TURNS = (1, 5)  # turns per session, uniform, inclusive
TOOL_CALLS_P = (0.25, 0.30, 0.25, 0.12, 0.08)  # P(0..4 tool calls in a turn)
MEAN_CHATS_PER_SESSION = float(np.mean(TURNS) * (1 + np.dot(np.arange(5), TOOL_CALLS_P)))
# (median, lognormal sigma)
THINK_MS = (15_000.0, 0.8)  # the user's pause between turns
USER_MESSAGE_TOKENS = (60.0, 0.7)
TOOL_REQUEST_TOKENS = (90.0, 0.4)  # a chat answer asking for a tool
FINAL_ANSWER_TOKENS = (280.0, 0.5)
TOOL_RESULT_TOKENS = (400.0, 0.7)
TOOL_SIGMA = 0.5
BACKOFF_MS = (400.0, 0.5)
RETRIES = 2
RETRYABLE = ("throttle", "server")
FRAMEWORK_GAP_MS = (1, 6)  # agent-framework bookkeeping between spans
SESSION_GROUP = 64
# Sessions last minutes. Starting them this long before the spec's start (and dropping the
# traces that begin before it) means agent traffic runs at full rate from the first second
# instead of ramping up as sessions accumulate.
WARM_UP_MS = 180_000
SPAN_FIELDS = SPAN_V1.names


def _span(trace_id: str, span_id: str, parent: str | None, start: int, end: int, **attrs) -> dict:
    span = dict.fromkeys(SPAN_FIELDS)
    span.update(
        schema_version=1,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        start_time=start,
        end_time=end,
        duration_ms=float(end - start),
        status_code="UNSET",
        **attrs,
    )
    if len(span) != len(SPAN_FIELDS):
        raise AssertionError(f"not SpanEvent fields: {sorted(span.keys() - set(SPAN_FIELDS))}")
    return span


@dataclass
class _Session:
    agent: Agent
    app: int
    model: int
    user: int
    conversation: str
    turns_left: int
    loop: Incident | None  # a runaway loop: one turn repeating one tool call
    records: list[Record] = field(default_factory=list)
    history: int = 0  # conversation tokens so far, resent with every call
    done: bool = False
    # the current turn
    trace_id: str = ""
    root_id: str = ""
    start: int = 0
    cursor: int = 0  # when the next span starts
    plan: list[Tool] = field(default_factory=list)  # the tools this turn will call
    step: int = 0  # tool calls made
    attempts: int = 0  # failed attempts of the current chat call
    usage: list[int] = field(default_factory=lambda: [0, 0, 0])  # input, output, cache read

    @property
    def common(self) -> dict:
        return {
            "service_name": self.agent.service_name,
            "agent_name": self.agent.name,
            "conversation_id": self.conversation,
        }


class AgentSessions:
    """Generates whole sessions, drawing in a fixed order, so output repeats with the seed."""

    def __init__(self, spec: TrafficSpec, pop: Population, effects: Effects, seed: list[int]):
        self._spec, self._pop, self._effects = spec, pop, effects
        # numpy draws the batched calls; the many scalar draws (ids, gaps, plans) come from
        # the stdlib generator, which is ten times faster one number at a time
        self._rng = np.random.default_rng(seed + [0])
        self._incident_rng = np.random.default_rng(seed + [1])
        self._scalars = random.Random("-".join(map(str, seed)))
        self._agent_weights = [a.weight for a in AGENTS]

    def _lognormal(self, median_sigma: tuple[float, float]) -> float:
        median, sigma = median_sigma
        return self._scalars.lognormvariate(math.log(median), sigma)

    def _gap(self) -> int:
        return self._scalars.randrange(*FRAMEWORK_GAP_MS)

    def _id(self, digits: int) -> str:
        # getrandbits(n) is 0 once in 2**n draws; all-zero ids are invalid in OpenTelemetry
        return f"{self._scalars.getrandbits(digits * 4) or 1:0{digits}x}"

    def _session(
        self,
        start: int,
        agent_index: int,
        user: int,
        conversation: str,
        turns: int,
        loop: Incident | None,
    ) -> _Session:
        app = self._pop.agent_app(agent_index)
        session = _Session(
            AGENTS[agent_index], app, int(self._pop.primary_model[app]), user, conversation,
            turns, loop,
        )  # fmt: skip
        self._start_turn(session, start)
        return session

    def random_sessions(self, starts: list[float]) -> list[list[Record]]:
        """Sessions starting at ``starts`` (ascending), each one's records in time order."""
        sessions = []
        users = self._pop.draw_users(self._rng, len(starts)).tolist()
        for start, user in zip(starts, users, strict=True):
            agent = self._scalars.choices(range(len(AGENTS)), self._agent_weights)[0]
            conversation = f"conv-{self._id(16)}"
            turns = self._scalars.randint(*TURNS)
            sessions.append(self._session(int(start), agent, user, conversation, turns, None))
        return self._run(sessions)

    def runaway_session(self, incident: Incident) -> list[Record]:
        """The incident's conversation: one turn that repeats one tool call until
        ``repeats`` calls or the incident's end, whichever comes first."""
        agent = self._scalars.randrange(len(AGENTS))
        user = self._pop.user_index(incident.key)
        user = int(self._pop.draw_users(self._rng, 1)[0]) if user is None else user
        session = self._session(incident.start_ms, agent, user, incident.key, 1, incident)
        return self._run([session])[0]

    def _start_turn(self, s: _Session, start: int) -> None:
        rng = self._scalars
        s.trace_id, s.root_id, s.start = self._id(32), self._id(16), start
        s.cursor, s.step, s.attempts, s.usage = start + self._gap(), 0, 0, [0, 0, 0]
        tools = s.agent.tools
        if s.loop is None:
            calls = rng.choices(range(len(TOOL_CALLS_P)), TOOL_CALLS_P)[0]
            s.plan = [rng.choice(tools) for _ in range(calls)]
        else:
            s.plan = [rng.choice(tools)] * int(s.loop.param("repeats"))
        s.history += int(self._lognormal(USER_MESSAGE_TOKENS))

    def _end_turn(self, s: _Session, failure: tuple[str, str] | None) -> None:
        end = s.cursor + self._gap()
        pop = self._pop
        root = _span(
            s.trace_id,
            s.root_id,
            None,
            s.start,
            end,
            name=f"invoke_agent {s.agent.name}",
            kind="INTERNAL",
            operation="invoke_agent",
            provider=pop.providers[s.model],
            model_id=pop.model_ids[s.model],
            agent_id=f"agt-{s.agent.name}",
            input_tokens=s.usage[0],
            output_tokens=s.usage[1],
            cache_read_input_tokens=s.usage[2],
            **s.common,
        )
        if failure is None:
            root["status_code"] = "OK"
        else:
            root.update(status_code="ERROR", error_type=failure[0], status_message=failure[1])
        s.records.append(Record(SPAN, root))
        s.turns_left -= 1
        if s.turns_left > 0:
            self._start_turn(s, end + int(self._lognormal(THINK_MS)))
        else:
            s.done = True

    def _wants_chat(self, s: _Session) -> bool:
        loop = s.loop
        if not s.done and loop is not None and (s.step == len(s.plan) or s.cursor >= loop.end_ms):
            self._end_turn(s, ("MaxIterationsExceeded", f"stopped after {s.step} tool calls"))
        return not s.done

    def _run(self, sessions: list[_Session]) -> list[list[Record]]:
        """Play the sessions to their end; each one's records in event-time order."""
        pop, rng = self._pop, self._rng
        active = [s for s in sessions if self._wants_chat(s)]
        while active:
            asks_tool = np.array([s.step < len(s.plan) for s in active])
            medians = np.where(asks_tool, TOOL_REQUEST_TOKENS[0], FINAL_ANSWER_TOKENS[0])
            sigmas = np.where(asks_tool, TOOL_REQUEST_TOKENS[1], FINAL_ANSWER_TOKENS[1])
            answers = np.exp(rng.normal(np.log(medians), sigmas)).astype(np.int64)
            calls = draw_calls(
                rng,
                self._incident_rng,
                pop,
                self._effects,
                self._spec.error_rate,
                np.array([float(s.cursor) for s in active]),
                np.array([s.model for s in active]),
                np.array([s.app for s in active]),
                np.array([s.user for s in active]),
                content_tokens=np.array([s.history for s in active]),
                answer_tokens=answers,
                streaming=np.zeros(len(active), dtype=bool),
            )
            durations = np.maximum(1, np.rint(calls.latency_ms)).astype(np.int64).tolist()
            events = invocation_events(calls, pop, rng)
            for s, event, duration, error, asks in zip(
                active, events, durations, calls.error.tolist(), asks_tool.tolist(), strict=True
            ):
                self._chat_done(s, event, duration, error, asks)
            active = [s for s in active if self._wants_chat(s)]
        for s in sessions:
            # a span before its call's event when both start together
            s.records.sort(key=lambda r: (record_time(r), r.contract == INVOCATION))
        return [s.records for s in sessions]

    def _chat_done(self, s: _Session, event: dict, duration: int, error: int, asks: bool):
        provider, model_id = event["provider"], event["model_id"]
        start, end, span_id = s.cursor, s.cursor + duration, self._id(16)
        event.update(trace_id=s.trace_id, span_id=span_id, session_id=s.conversation)
        event["latency_ms"] = float(duration)
        if asks and error < 0:
            event["finish_reason"] = FINISH_REASONS[provider][2]
        chat = _span(
            s.trace_id,
            span_id,
            s.root_id,
            start,
            end,
            name=f"chat {model_id}",
            kind="CLIENT",
            operation="chat",
            provider=provider,
            model_id=model_id,
            response_model=model_id,
            input_tokens=event["input_tokens"],
            output_tokens=event["output_tokens"],
            cache_read_input_tokens=event["cache_read_input_tokens"],
            finish_reasons=event["finish_reason"],
            error_type=event["error_type"],
            **s.common,
        )
        s.usage[0] += event["input_tokens"]
        s.usage[1] += event["output_tokens"]
        s.usage[2] += event["cache_read_input_tokens"] or 0
        s.records += [Record(SPAN, chat), Record(INVOCATION, event)]
        s.cursor = end + self._gap()
        if event["status"] == "error":
            chat.update(status_code="ERROR", status_message=f"HTTP {event['http_status']}")
            retry = s.attempts < RETRIES and ERROR_TABLE[error].error_class in RETRYABLE
            if s.loop is not None or retry:  # a runaway agent does not stop on errors
                s.attempts += 1
                s.cursor += int(self._lognormal(BACKOFF_MS))
            else:
                self._end_turn(s, (event["error_type"], "model call failed"))
            return
        s.attempts = 0
        s.history += event["output_tokens"]
        if event["guardrail_intervened"]:
            # A content filter blocked the prompt or cut the answer. The call succeeded (HTTP
            # 200, billed) and what came back, the filter's refusal or the cut answer, holds
            # no tool call, so the agent has nothing to act on: like a final answer it ends
            # the turn, and the turn did not fail (root OK, no error type), since the agent
            # worked as built and the user got the refusal. The conversation goes on: the
            # user may ask again in the session's next turn. A runaway agent ignores it and
            # asks the model again, as it ignores everything.
            if s.loop is None:
                self._end_turn(s, None)
            return
        if not asks:
            self._end_turn(s, None)
        elif s.loop is None or s.cursor < s.loop.end_ms:
            self._tool(s, s.plan[s.step])
            s.history += int(self._lognormal(TOOL_RESULT_TOKENS))
            s.step += 1
        # else a runaway loop's time is up: _wants_chat ends the turn before another span

    def _tool(self, s: _Session, tool: Tool) -> None:
        end = s.cursor + max(1, round(self._lognormal((tool.median_ms, TOOL_SIGMA))))
        span = _span(
            s.trace_id,
            self._id(16),
            s.root_id,
            s.cursor,
            end,
            name=f"execute_tool {tool.name}",
            kind="INTERNAL",
            operation="execute_tool",
            tool_name=tool.name,
            tool_call_id=f"call_{self._id(16)}",
            **s.common,
        )
        if self._scalars.random() < tool.failure_rate:
            error = self._scalars.choice(TOOL_ERRORS)
            span.update(status_code="ERROR", error_type=error, status_message=f"{tool.name} failed")
        s.records.append(Record(SPAN, span))
        s.cursor = end + self._gap()


def _merge_sessions(sessions: Iterator[tuple[float, list[Record]]]) -> Iterator[Record]:
    """Merge (start, records) sessions arriving in start order into one stream in event-time
    order."""
    heap: list[tuple[int, int, Record]] = []
    order = itertools.count()
    upcoming = next(sessions, None)
    while heap or upcoming is not None:
        # a session holds nothing earlier than its start, so the heap's head is final once
        # the next session starts after it
        while upcoming is not None and (not heap or upcoming[0] <= heap[0][0]):
            for record in upcoming[1]:
                heapq.heappush(heap, (record_time(record), next(order), record))
            upcoming = next(sessions, None)
        if heap:
            yield heapq.heappop(heap)[2]


def _from(start_ms: int, records: list[Record]) -> list[Record]:
    """The records of the traces that begin at or after ``start_ms``: whole trees only."""
    early = {
        r.event["trace_id"]
        for r in records
        if r.contract == SPAN
        and r.event["parent_span_id"] is None
        and r.event["start_time"] < start_ms
    }
    return [r for r in records if r.event["trace_id"] not in early] if early else records


def agent_traffic(spec: TrafficSpec, pop: Population, effects: Effects) -> Iterator[Record]:
    """Sessions starting as a Poisson process sized to make ``agent_share`` of the calls."""
    rate = spec.rate_per_s * spec.agent_share / MEAN_CHATS_PER_SESSION
    arrivals = Arrivals(spec.start_ms - WARM_UP_MS, rate, spec.diurnal)
    arrival_rng = np.random.default_rng([spec.seed, 2])
    sessions = AgentSessions(spec, pop, effects, [spec.seed, 3])

    def generate() -> Iterator[tuple[float, list[Record]]]:
        while True:
            starts = arrivals.next(arrival_rng, SESSION_GROUP).tolist()
            for start, records in zip(starts, sessions.random_sessions(starts), strict=True):
                yield start, _from(spec.start_ms, records)

    return _merge_sessions(generate())


def runaway_traffic(
    spec: TrafficSpec, pop: Population, effects: Effects, incident: Incident, stream: int
) -> Iterator[Record]:
    yield from AgentSessions(spec, pop, effects, [spec.seed, stream]).runaway_session(incident)
