"""queue_log lines to canonical events, over a model of agents that survives restarts.

A line is `time|callid|queue|agent|event|data1|...|data5` (Asterisk 1.8 to 22). Contact
events take the ids `asterisk_ami` gives the same facts (`{Uniqueid}@{queue}:queued`, ...),
so with both sources on the journal keeps one of each; agent events take an id from the
line's bytes, so a line read twice (after a restart) is stored once.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
Event = dict[str, Any]
MAX_LINE_BYTES = 4096  # a queue_log line is ~100 bytes; longer ones are not Asterisk's
MAX_NAME = 256  # callid, queue, agent (the core refuses names over server.max_name_length)
MAX_AGENTS = 10_000  # agents the model keeps (the core's server.max_agents bounds it too)
MAX_IGNORED_NAMES = 64  # distinct unknown event names counted one by one; the rest as "other"
# Lines that say nothing the board counts (ring attempts, reloads, markers).
KNOWN_SILENT = frozenset({"RINGNOANSWER", "RINGCANCELED", "AGENTDUMP", "QUEUESTART",
                          "CONFIGRELOAD", "SYSCOMPAT", "DID", "INFO", "PENALTY",
                          "AGENTCALLED", "ENTERQUEUE_RINGING"})
EXITS = frozenset({"EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"})
TRANSFERS = frozenset({"TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})
NONE = "NONE"  # queue_log's placeholder for a field that does not apply
# Why a known line gave no event (its queue is filtered out, or it names no queue or agent).
REASONS = frozenset({"unmapped_queue", "no_queue", "no_agent"})


class BadLine(ValueError):
    """A line that is not queue_log's shape (the message says why)."""


@dataclass
class Line:
    """One parsed queue_log line."""

    ts: float
    callid: str
    queue: str
    agent: str
    event: str
    data: list[str]
    raw: bytes

    def num(self, index: int) -> float | None:
        """data[index] (0-based: data1 is 0) as a non-negative number, or None."""
        try:
            value = float(self.data[index])
        except (IndexError, ValueError):
            return None
        return value if 0.0 <= value < 1e9 else None


def parse_line(raw: bytes) -> Line:
    """A line (without its newline) parsed; BadLine when it is not queue_log's shape."""
    if len(raw) > MAX_LINE_BYTES:
        raise BadLine(f"longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise BadLine("not UTF-8") from None
    parts = text.split("|")
    if len(parts) < 5:
        raise BadLine(f"{len(parts)} fields, queue_log has at least 5")
    try:
        ts = float(parts[0])
    except ValueError:
        raise BadLine(f"time {parts[0][:20]!r} is not epoch seconds") from None
    if not 0 < ts < 4_102_444_800:  # 1970..2100, as the core checks
        raise BadLine(f"time {parts[0][:20]!r} is out of range")
    event = parts[4].strip().upper()
    if not event or len(event) > 40:
        raise BadLine("no event name")
    if max(len(parts[1]), len(parts[2]), len(parts[3])) > MAX_NAME:
        raise BadLine(f"a callid, queue or agent longer than {MAX_NAME} characters")
    return Line(ts, parts[1].strip(), parts[2].strip(), parts[3].strip(), event, parts[5:],
                raw)


@dataclass
class Agent:
    """What queue_log told of one agent: its queues, paused ones (with reasons), a call."""

    queues: set[str] = field(default_factory=set)
    paused: dict[str, str] = field(default_factory=dict)  # queue -> reason ("" for none)
    on_call: int = 0  # calls connected and not completed
    last: tuple[str, tuple[str, ...], str | None] | None = None  # the state last emitted

    def state(self) -> tuple[str, tuple[str, ...], str | None]:
        """(state, queues, reason) by asterisk_ami's rule: a call makes it busy, an unpaused
        queue available, paused everywhere away, no queue offline."""
        queues = tuple(sorted(self.queues))
        if self.on_call:
            return "busy", queues, None
        if not self.queues:
            return "offline", queues, None
        if any(q not in self.paused for q in self.queues):
            return "available", queues, None
        reason = next((r for q, r in sorted(self.paused.items()) if r), None)
        return "away", queues, reason

    def to_json(self) -> dict[str, Any]:
        """The agent as the source's state file keeps it."""
        return {"queues": sorted(self.queues), "paused": dict(self.paused),
                "on_call": self.on_call}

    @classmethod
    def from_json(cls, data: Any) -> Agent:
        """An agent back from the state file (anything unexpected reads as nothing known)."""
        if not isinstance(data, dict):
            return cls()
        queues = {q for q in data.get("queues") or [] if isinstance(q, str)}
        paused = {q: r for q, r in dict(data.get("paused") or {}).items()
                  if isinstance(q, str) and isinstance(r, str)}
        on_call = data.get("on_call")
        return cls(queues, paused, on_call if isinstance(on_call, int) and on_call > 0 else 0)


class Mapper:
    """Turns parsed lines into canonical events; keeps agents between lines and restarts."""

    def __init__(self, queue_name: Callable[[str], str | None],
                 skipped: Counter[str] | None = None) -> None:
        self.queue_name = queue_name
        self.agents: dict[str, Agent] = {}
        self.ignored: Counter[str] = Counter()  # lines not counted, by event name
        # Lines of event names not known here, as "unknown_event" (the source's `skipped`).
        self.skipped: Counter[str] = Counter() if skipped is None else skipped

    def _ignore(self, name: str) -> list[Event]:
        known = name in KNOWN_SILENT or name in REASONS
        if not known:
            self.skipped["unknown_event"] += 1  # a name not known here (a newer Asterisk's)
        if name not in self.ignored:
            if len(self.ignored) >= MAX_IGNORED_NAMES:
                name = "other"
            elif not known:
                log.info("queue_log: %s lines are not counted (the first one read now)", name)
        self.ignored[name] += 1
        return []

    def handle(self, line: Line) -> list[Event]:
        """The canonical events of one line (none for the lines the board does not count)."""
        name = line.event
        if name in ("PAUSEALL", "UNPAUSEALL", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
            return self._all_queues(line)
        if name in KNOWN_SILENT:
            return self._ignore(name)
        if not line.queue or line.queue == NONE:
            return self._ignore("no_queue")
        queue = self.queue_name(line.queue)
        if queue is None:
            return self._ignore("unmapped_queue")  # only_mapped_queues
        if name in ("ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "AGENTLOGIN",
                    "AGENTCALLBACKLOGIN"):
            return self._member(line, queue)
        uid = line.callid
        if not uid or uid == NONE:
            return self._ignore(name)
        base: Event = {"ts": line.ts, "queue": queue, "contact_id": uid}
        if name == "ENTERQUEUE":
            return [{"type": "contact.queued", "id": f"{uid}@{queue}:queued", **base}]
        if name == "ABANDON":  # position|origposition|waittime
            return [self._with_wait({"type": "contact.abandoned",
                                     "id": f"{uid}@{queue}:abandoned", **base}, line.num(2))]
        if name in EXITS:
            # Passed on by the queue (timeout, no members, a key): a flow-out, not an abandon.
            # Asterisk 13+ logs ...|position|origposition|waittime; 1.8 left the wait out.
            wait = line.num(3 if name == "EXITWITHKEY" else 2)
            return [self._with_wait({"type": "contact.transferred",
                                     "id": f"{uid}@{queue}:transferred", **base}, wait)]
        agent = line.agent if line.agent and line.agent != NONE else None
        if name == "CONNECT":  # holdtime|bridgedchanneluniqueid|ringtime
            event = self._with_wait({"type": "contact.answered",
                                     "id": f"{uid}@{queue}:answered", **base}, line.num(0))
            return [self._agent_field(event, agent), *self._call(line, agent, queue, +1)]
        if name in ("COMPLETEAGENT", "COMPLETECALLER") or name in TRANSFERS:
            # COMPLETE*: holdtime|calltime|origposition; (BLIND)TRANSFER: extension|context|
            # holdtime|calltime|origposition; ATTENDEDTRANSFER: method|data|holdtime|calltime.
            talk = line.num(1 if name.startswith("COMPLETE") else 3)
            ended = self._agent_field({"type": "contact.ended", "id": f"{uid}@{queue}:ended",
                                       **base, "talk_s": talk or 0.0}, agent)
            events = [ended]
            if name in TRANSFERS:
                events.append(self._agent_field({"type": "contact.transferred",
                                                 "id": f"{uid}@{queue}:transferred", **base},
                                                agent))
            return [*events, *self._call(line, agent, queue, -1)]
        return self._ignore(name)

    @staticmethod
    def _with_wait(event: Event, wait: float | None) -> Event:
        if wait is not None:
            event["wait_s"] = wait
        return event

    @staticmethod
    def _agent_field(event: Event, agent: str | None) -> Event:
        if agent is not None:
            event["agent"] = agent
        return event

    def _agent(self, name: str) -> Agent | None:
        found = self.agents.get(name)
        if found is None and len(self.agents) < MAX_AGENTS:
            found = self.agents[name] = Agent()
        return found

    def _call(self, line: Line, name: str | None, queue: str, step: int) -> list[Event]:
        agent = self._agent(name) if name is not None else None
        if agent is None:
            return []
        agent.queues.add(queue)  # a call in a queue tells its membership
        agent.on_call = max(0, agent.on_call + step)
        return self._changed(line, name or "", agent)

    def _member(self, line: Line, queue: str) -> list[Event]:
        name = line.agent
        agent = self._agent(name) if name and name != NONE else None
        if agent is None:
            return self._ignore(line.event if name and name != NONE else "no_agent")
        event = line.event
        if event in ("ADDMEMBER", "AGENTLOGIN", "AGENTCALLBACKLOGIN"):
            agent.queues.add(queue)
        elif event == "REMOVEMEMBER":
            agent.queues.discard(queue)
            agent.paused.pop(queue, None)
        elif event == "PAUSE":
            agent.queues.add(queue)
            agent.paused[queue] = (line.data[0].strip() if line.data else "")[:128]
        else:  # UNPAUSE
            agent.queues.add(queue)
            agent.paused.pop(queue, None)
        return self._changed(line, name, agent)

    def _all_queues(self, line: Line) -> list[Event]:
        name = line.agent
        agent = self._agent(name) if name and name != NONE else None
        if agent is None:
            return self._ignore(line.event)
        if line.event == "PAUSEALL":
            reason = (line.data[0].strip() if line.data else "")[:128]
            agent.paused = dict.fromkeys(agent.queues, reason)
        elif line.event == "UNPAUSEALL":
            agent.paused = {}
        else:  # logged off: out of every queue
            agent.queues, agent.paused, agent.on_call = set(), {}, 0
        return self._changed(line, name, agent)

    def _changed(self, line: Line, name: str, agent: Agent) -> list[Event]:
        current = agent.state()
        if current == agent.last:
            return []
        agent.last = current
        state, queues, reason = current
        event: Event = {"type": "agent.state", "ts": line.ts, "agent": name, "state": state,
                        "queues": list(queues),
                        "id": "ql-" + hashlib.blake2b(line.raw, digest_size=10).hexdigest()}
        if reason:
            event["reason"] = reason
        if state == "offline":
            del self.agents[name]  # told offline: forget it (the model stays bounded)
        return [event]
