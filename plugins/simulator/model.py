"""A seeded discrete-event simulation of a contact center that yields canonical events."""

from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .source import SimQueueConfig, SimulatorConfig

HOUR_S = 3600.0
# Callers beyond this many waiting get a busy tone instead of a queue slot: real ACDs cap
# queues, and it keeps memory bounded even for an overloaded queue whose callers never give up.
QUEUE_CAPACITY = 2_000
# A 1-5 CSAT answer from a contact that did not wait: mostly top-2-box, as surveys are.
CSAT_WEIGHTS = (0.04, 0.04, 0.10, 0.30, 0.52)
CSAT_DELAY_S = (10.0, 120.0)
# A wait this long costs a survey point for sure; an e-mail may wait far longer than a call.
WAIT_TOLERANCE_S: dict[str, float] = {"voice": 600.0, "chat": 1200.0, "email": 14_400.0}
# Seconds a routed contact alerts (rings) at the agent before it is answered.
ALERT_S: dict[str, tuple[float, float]] = {"voice": (2.0, 8.0), "chat": (1.0, 3.0)}
# Only calls are put on hold: (share of calls with hold, hold as a share of the conversation).
HOLD_CHANCE: dict[str, float] = {"voice": 0.35}
HOLD_SHARE = (0.05, 0.30)
# A conversation never takes less than this share of the mean: nobody hangs up in 0.1 s.
MIN_CONVERSATION_SHARE = 0.1

OFFLINE, AVAILABLE, RESERVED, BUSY, WRAPUP, AWAY = (
    "offline", "available", "reserved", "busy", "wrapup", "away")


@dataclass(slots=True, eq=False)
class Contact:
    """A contact waiting in, or routed from, a queue."""

    id: str
    queue: QueueSim
    queued_at: float


@dataclass(slots=True, eq=False)
class Agent:
    """One agent serving one queue; only the current contact is kept, never a history."""

    name: str
    index: int
    queue: QueueSim
    grumpiness: float  # extra chance that this agent's customers mark the survey down
    state: str = OFFLINE
    idle_since: float = 0.0  # when the agent last became available
    shift_since: float = 0.0  # when the agent last logged in or out
    on_duty: bool = False
    leaving: bool = False  # log out when the current contact or break is over
    break_due: bool = False  # take a break when the current contact is over
    break_token: int = 0  # invalidates break timers of an earlier shift
    contact: Contact | None = None
    talk_s: float = 0.0
    hold_s: float = 0.0
    wrap_s: float = 0.0
    wait_s: float = 0.0


class QueueSim:
    """A FIFO queue with its agents and its hourly staffing plan."""

    def __init__(self, name: str, cfg: SimQueueConfig, staffing: list[int]) -> None:
        self.name = name
        self.cfg = cfg
        self.team = cfg.team or name
        self.staffing = staffing
        self.waiting: OrderedDict[str, Contact] = OrderedDict()
        self.agents: list[Agent] = []


def hour_of(ts: float) -> int:
    """The UTC hour of day (0-23) of an epoch timestamp."""
    return int(ts // HOUR_S) % 24


def staffing_plan(cfg: SimQueueConfig, profile: list[float], scheduled: bool) -> list[int]:
    """Agents logged in per UTC hour: square-root staffing scaled from the peak headcount."""
    headcount = cfg.agents
    if not scheduled or headcount == 0:
        return [headcount] * 24
    peak = max(profile)
    peak_load = cfg.arrivals_per_hour * cfg.aht_s / HOUR_S  # offered load in Erlangs
    # The headcount's safety margin over the peak load, in units of sqrt(load), is kept at
    # every hour: this is how planners keep service level steady as traffic falls.
    beta = (headcount - peak_load) / math.sqrt(peak_load)
    plan = []
    for share in (p / peak for p in profile):
        load = peak_load * share
        staff = load + beta * math.sqrt(load) if beta >= 0 else headcount * share
        plan.append(max(1, min(headcount, round(staff))))
    return plan


class Simulation:
    """Deterministic contact-center simulation: the same inputs give the same events."""

    def __init__(self, config: SimulatorConfig, seed: int, start_ts: float,
                 source_name: str) -> None:
        self._rng = random.Random(seed)
        self._profile = list(config.profile)
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self._out: list[dict[str, Any]] = []
        self._events = 0
        self._contacts = 0
        # Ids must differ between runs: the pipeline drops ids it has already seen.
        self._prefix = f"{source_name}-{seed & 0xFFFFFFFF:x}-{int(start_ts):x}"
        self.now = round(start_ts, 3)
        self.queues: list[QueueSim] = []
        for name, cfg in config.queues.items():
            queue = QueueSim(name, cfg, staffing_plan(cfg, self._profile,
                                                      config.scheduled_staffing))
            width = max(2, len(str(cfg.agents)))
            queue.agents = [Agent(f"{name}-{i:0{width}d}", i, queue, self._rng.uniform(0, 0.12))
                            for i in range(1, cfg.agents + 1)]
            self.queues.append(queue)
        self._at(self.now, self._open, None)

    def advance(self, until_ts: float) -> list[dict[str, Any]]:
        """Run to `until_ts` and return the new events with ts <= until_ts, in ts order."""
        heap = self._heap
        while heap and heap[0][0] <= until_ts:
            self.now, _, handler, arg = heapq.heappop(heap)
            handler(arg)
        out, self._out = self._out, []
        return out

    def waiting(self, queue: str) -> int:
        """How many contacts wait in `queue` right now."""
        for candidate in self.queues:
            if candidate.name == queue:
                return len(candidate.waiting)
        raise KeyError(queue)

    # -- plumbing ---------------------------------------------------------------------------

    def _at(self, ts: float, handler: Callable[[Any], None], arg: Any) -> None:
        # Millisecond times keep event fields exact; the sequence number breaks ties in the
        # order things were scheduled, so the run never depends on how advance() is chunked.
        self._seq += 1
        heapq.heappush(self._heap, (round(ts, 3), self._seq, handler, arg))

    def _emit(self, etype: str, **fields: Any) -> None:
        self._events += 1
        self._out.append({"type": etype, "id": f"{self._prefix}-{self._events}",
                          "ts": self.now, **fields})

    def _emit_contact(self, etype: str, contact: Contact, **fields: Any) -> None:
        queue = contact.queue
        self._emit(etype, queue=queue.name, channel=queue.cfg.channel, contact_id=contact.id,
                   **fields)

    def _set_state(self, agent: Agent, state: str, reason: str | None = None,
                   contact: Contact | None = None) -> None:
        agent.state = state
        fields: dict[str, Any] = {"agent": agent.name, "state": state,
                                  "queues": [agent.queue.name], "team": agent.queue.team}
        if reason is not None:
            fields["reason"] = reason
        if contact is not None:
            fields["contact_id"] = contact.id
        self._emit("agent.state", **fields)

    # -- arrivals and abandons ----------------------------------------------------------------

    def _open(self, _: None) -> None:
        """Log in the agents planned for the first hour, open the queues, start the clock."""
        hour = hour_of(self.now)
        for queue in self.queues:
            for agent in queue.agents:
                if agent.index <= queue.staffing[hour]:
                    self._log_in(agent)
                else:
                    agent.shift_since = self.now
                    self._set_state(agent, OFFLINE, "off shift")
            self._schedule_arrival(queue)
        self._at((math.floor(self.now / HOUR_S) + 1) * HOUR_S, self._on_hour, None)

    def _schedule_arrival(self, queue: QueueSim) -> None:
        # Inversion of a piecewise-constant Poisson rate: spend one unit-exponential draw
        # across the hours until the integrated rate covers it.
        need = self._rng.expovariate(1.0)
        per_s = queue.cfg.arrivals_per_hour / HOUR_S
        t = self.now
        while True:
            hour_end = (math.floor(t / HOUR_S) + 1) * HOUR_S
            rate = per_s * self._profile[hour_of(t)]
            if rate * (hour_end - t) >= need:
                self._at(t + need / rate, self._on_arrival, queue)
                return
            need -= rate * (hour_end - t)
            t = hour_end

    def _on_arrival(self, queue: QueueSim) -> None:
        self._schedule_arrival(queue)
        if len(queue.waiting) >= QUEUE_CAPACITY:
            return
        self._contacts += 1
        contact = Contact(f"{self._prefix}-c{self._contacts}", queue, self.now)
        self._emit_contact("contact.queued", contact)
        idle = [a for a in queue.agents if a.state == AVAILABLE]
        if idle:
            # Route to the longest-idle agent, as ACDs do to spread the work fairly.
            self._route(min(idle, key=lambda a: (a.idle_since, a.index)), contact)
            return
        queue.waiting[contact.id] = contact
        if queue.cfg.patience_s is not None:
            patience = self._rng.expovariate(1.0 / queue.cfg.patience_s)
            self._at(self.now + patience, self._on_patience_out, contact)

    def _on_patience_out(self, contact: Contact) -> None:
        if contact.queue.waiting.pop(contact.id, None) is None:
            return  # already routed to an agent
        self._emit_contact("contact.abandoned", contact,
                           wait_s=round(self.now - contact.queued_at, 3))

    # -- handling a contact -------------------------------------------------------------------

    def _route(self, agent: Agent, contact: Contact) -> None:
        agent.state = RESERVED  # alerting: no longer available, not yet on the contact
        agent.contact = contact
        low, high = ALERT_S.get(contact.queue.cfg.channel, (0.0, 0.0))
        self._at(self.now + self._rng.uniform(low, high), self._on_answer, agent)

    def _on_answer(self, agent: Agent) -> None:
        contact = agent.contact
        assert contact is not None
        cfg = contact.queue.cfg
        agent.wait_s = round(self.now - contact.queued_at, 3)
        self._emit_contact("contact.answered", contact, wait_s=agent.wait_s, agent=agent.name,
                           team=contact.queue.team)
        self._set_state(agent, BUSY, contact=contact)
        rng = self._rng
        # Handle time is roughly exponential around aht_s, of which wrap-up is the near-fixed
        # admin part and the rest is the conversation, sometimes with a hold in it.
        mean_talk = cfg.aht_s - cfg.wrap_s
        floor = mean_talk * MIN_CONVERSATION_SHARE
        conversation = round(floor + rng.expovariate(1.0 / (mean_talk - floor)), 3)
        hold = 0.0
        if rng.random() < HOLD_CHANCE.get(cfg.channel, 0.0):
            hold = round(conversation * rng.uniform(*HOLD_SHARE), 3)
        agent.hold_s, agent.talk_s = hold, round(conversation - hold, 3)
        agent.wrap_s = round(cfg.wrap_s * rng.uniform(0.5, 1.5), 3)
        self._at(self.now + conversation, self._on_conversation_end, agent)

    def _on_conversation_end(self, agent: Agent) -> None:
        if agent.wrap_s <= 0:
            self._on_wrap_end(agent)
            return
        self._set_state(agent, WRAPUP, contact=agent.contact)
        self._at(self.now + agent.wrap_s, self._on_wrap_end, agent)

    def _on_wrap_end(self, agent: Agent) -> None:
        contact = agent.contact
        assert contact is not None
        queue = contact.queue
        # Ended once wrap-up is done, when the whole handle time is known.
        self._emit_contact("contact.ended", contact, talk_s=agent.talk_s, hold_s=agent.hold_s,
                           wrap_s=agent.wrap_s, agent=agent.name, team=queue.team)
        if self._rng.random() < queue.cfg.csat_response_rate:
            delay = self._rng.uniform(*CSAT_DELAY_S)
            survey = (contact, agent.name, agent.grumpiness, agent.wait_s)
            self._at(self.now + delay, self._on_survey, survey)
        agent.contact = None
        self._free(agent)

    def _on_survey(self, survey: tuple[Contact, str, float, float]) -> None:
        contact, agent_name, grumpiness, wait_s = survey
        rng = self._rng
        score = rng.choices(range(1, 6), weights=CSAT_WEIGHTS)[0]
        # Long waits sour the experience: up to a 60% chance of losing a point.
        tolerance = WAIT_TOLERANCE_S.get(contact.queue.cfg.channel, 600.0)
        if score > 1 and rng.random() < min(0.6, wait_s / tolerance + grumpiness):
            score -= 1
        self._emit("survey.response", kind="csat", score=score, scale_min=1, scale_max=5,
                   queue=contact.queue.name, channel=contact.queue.cfg.channel,
                   contact_id=contact.id, agent=agent_name, team=contact.queue.team)

    def _free(self, agent: Agent) -> None:
        """The agent has nothing to do: log out, take a due break, or take the oldest contact."""
        if agent.leaving:
            self._log_out(agent)
        elif agent.break_due:
            self._start_break(agent)
        else:
            agent.idle_since = self.now
            self._set_state(agent, AVAILABLE)
            if agent.queue.waiting:
                _, contact = agent.queue.waiting.popitem(last=False)
                self._route(agent, contact)

    # -- breaks and shifts -------------------------------------------------------------------

    def _schedule_break(self, agent: Agent) -> None:
        breaks = agent.queue.cfg.breaks
        if breaks is not None:
            delay = self._rng.expovariate(1.0 / breaks.every_s)
            self._at(self.now + delay, self._on_break_due, (agent, agent.break_token))

    def _on_break_due(self, due: tuple[Agent, int]) -> None:
        agent, token = due
        if token != agent.break_token or not agent.on_duty:
            return  # a timer from an earlier shift
        if agent.state == AVAILABLE:
            self._start_break(agent)
        else:
            agent.break_due = True  # breaks never interrupt a contact

    def _start_break(self, agent: Agent) -> None:
        breaks = agent.queue.cfg.breaks
        assert breaks is not None
        agent.break_due = False
        self._set_state(agent, AWAY, "break")
        self._at(self.now + breaks.mean_s * self._rng.uniform(0.5, 1.5), self._on_break_end, agent)

    def _on_break_end(self, agent: Agent) -> None:
        self._free(agent)
        if agent.on_duty:
            self._schedule_break(agent)

    def _log_in(self, agent: Agent) -> None:
        agent.on_duty, agent.leaving, agent.break_due = True, False, False
        agent.break_token += 1
        agent.shift_since = self.now
        self._free(agent)
        self._schedule_break(agent)

    def _log_out(self, agent: Agent) -> None:
        agent.on_duty, agent.leaving, agent.break_due = False, False, False
        agent.break_token += 1
        agent.shift_since = self.now
        self._set_state(agent, OFFLINE, "end of shift")

    def _on_hour(self, _: None) -> None:
        hour = hour_of(self.now)
        for queue in self.queues:
            self._restaff(queue, queue.staffing[hour])
        self._at(self.now + HOUR_S, self._on_hour, None)

    def _restaff(self, queue: QueueSim, target: int) -> None:
        on_duty = [a for a in queue.agents if a.on_duty and not a.leaving]
        if len(on_duty) > target:
            # Whoever logged in first leaves first; nobody drops a contact to do so.
            by_seniority = sorted(on_duty, key=lambda a: (a.shift_since, a.index))
            for agent in by_seniority[:len(on_duty) - target]:
                if agent.state == AVAILABLE:
                    self._log_out(agent)
                else:
                    agent.leaving = True
            return
        missing = target - len(on_duty)
        for agent in queue.agents:
            if missing and agent.on_duty and agent.leaving:
                agent.leaving = False  # cheaper to keep someone than to call someone in
                missing -= 1
        offline = sorted((a for a in queue.agents if not a.on_duty),
                         key=lambda a: (a.shift_since, a.index))
        for agent in offline[:missing]:
            self._log_in(agent)
