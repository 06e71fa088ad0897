"""Checkpoints: the fold's whole state as one versioned, checksummed binary blob.

Layout: MAGIC, then `<HB32sd H I` (format, reserved, settings fingerprint, wall time,
position length, body length), VERSION (the wallboard version and a digest of the pickled
classes' attributes, length-prefixed), the journal position, the blake2b digest of everything
before it and of the body, then the body: a
pickle of plain containers and an allow-list of wallboard classes, read back with an
Unpickler that refuses any other global, so a tampered store cannot run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import itertools
import pickle
import struct
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from wallboard import __version__
from wallboard.base.recent import Recent
from wallboard.config.settings import QueueConfig, Settings
from wallboard.ingest.pipeline import Pipeline
from wallboard.kpi.history import History

MAGIC = b"WBCKPT\r\n"  # \r\n: a text-mode copy of the blob fails here, not in the body
FORMAT = 1  # the layout above and the body's fields; a change makes old checkpoints foreign
_HEAD = struct.Struct("<HB32sdHI")
_DIGEST = 32
# The aggregator's attributes that the fold writes, by name; everything else it holds comes
# from the settings, the running process (clock, errors) or is rebuilt (`_seq`, queue configs).
FOLD_FIELDS = ("state", "leaves", "agent_windows", "_default_leaf", "timers", "next_timer",
               "late", "advanced_to", "surveys", "history")
FROM_SETTINGS = ("settings", "clock", "tz", "specs", "shift_resets", "lateness_s", "layout",
                 "errors", "refused", "queue_configs", "_seq", "reasons")
# Every global a checkpoint body may name: the fold's own classes and plain containers.
ALLOWED = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "float"), ("builtins", "int"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
    ("collections", "defaultdict"), ("collections", "Counter"), ("collections", "deque"),
    ("collections", "OrderedDict"), ("datetime", "time"), ("zoneinfo", "ZoneInfo"),
    ("wallboard.base.recent", "Recent"),
    ("wallboard.config.windows", "WindowSpec"),
    ("wallboard.fold.agents", "AgentWindows"),
    ("wallboard.fold.leaf", "Leaf"),
    ("wallboard.fold.intervals", "IntervalBook"), ("wallboard.fold.intervals", "IntervalHistory"),
    ("wallboard.fold.intervals", "IntervalRecord"),
    ("wallboard.fold.periods", "CalendarPeriod"), ("wallboard.fold.periods", "DayBounds"),
    ("wallboard.fold.periods", "ShiftBounds"),
    ("wallboard.fold.state", "LiveState"), ("wallboard.fold.state", "QueueLive"),
    ("wallboard.fold.state", "AgentLive"), ("wallboard.fold.state", "Waiting"),
    ("wallboard.fold.state", "QueueSnapshot"), ("wallboard.fold.state", "Ticket"),
    ("wallboard.fold.surveys", "SurveyMemory"), ("wallboard.fold.surveys", "CountedSurvey"),
    ("wallboard.fold.windows", "WindowSet"), ("wallboard.fold.windows", "RollingWindows"),
})


def _layout() -> str:
    """A digest of the pickled classes' attributes: a checkpoint of another shape is foreign.

    The wallboard version alone would let a development build load a checkpoint whose classes
    had other attributes; a fold on it would fail event after event.
    """
    parts = []
    for module, name in sorted(ALLOWED):
        if not module.startswith("wallboard."):
            continue
        cls = getattr(importlib.import_module(module), name)
        if dataclasses.is_dataclass(cls):
            names = [f.name for f in dataclasses.fields(cls)]
        elif hasattr(cls, "_fields"):  # a NamedTuple
            names = list(cls._fields)
        elif "__slots__" in vars(cls):
            names = list(cls.__slots__)
        else:  # the names its __init__ uses: the attributes it sets among them
            names = list(cls.__init__.__code__.co_names)
        parts.append(f"{module}.{name}:{','.join(sorted(names))}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=6).hexdigest()


VERSION = f"{__version__}+{_layout()}"  # what a checkpoint's version must be


class CheckpointError(Exception):
    """A checkpoint that cannot be used; `reason` is the metric label (corrupt, version...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Header:
    """What a checkpoint says about itself."""

    format: int
    version: str
    fingerprint: bytes
    at: float  # the wall time it was taken (the aggregator's clock)
    position: str  # the last journal position its state includes


def fingerprint(settings: Settings) -> bytes:
    """A digest of the settings that shape the fold: windows, queues, site, agents, limits."""
    server = settings.server
    shaping = {"windows": settings.windows,
               "queues": {k: q.model_dump(mode="json") for k, q in settings.queues.items()},
               "site": settings.site.model_dump(mode="json"),
               # The reason map sizes agents' windows; the roster seeds live state.
               "agents": settings.agents.model_dump(mode="json"),
               "limits": [server.max_queues, server.max_teams, server.max_agents,
                          server.dedupe_cache_ids, server.max_name_length]}
    return hashlib.blake2b(orjson.dumps(shaping, option=orjson.OPT_SORT_KEYS),
                           digest_size=32).digest()


def _zone(zone: ZoneInfo) -> tuple[type[ZoneInfo], tuple[str]]:
    """A zone by its key: its default reduce goes through builtins.getattr, refused on load."""
    return ZoneInfo, (zone.key,)


# A table, not reducer_override: that would be a Python call for every object pickled.
_DISPATCH = {ZoneInfo: _zone}


class _Unpickler(pickle.Unpickler):
    """Only the globals of ALLOWED; any other is a corrupt (or hostile) checkpoint."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise CheckpointError("corrupt", f"the body names {module}.{name}, not allowed")
        return super().find_class(module, name)


def dumps(value: Any) -> bytes:
    """Pickle `value` as a checkpoint body."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=5)
    pickler.dispatch_table = _DISPATCH  # type: ignore[assignment]  # typeshed: a ChainMap-like
    pickler.dump(value)
    return out.getvalue()


def loads(body: bytes) -> Any:
    """A body back, refusing any global outside ALLOWED."""
    return _Unpickler(io.BytesIO(body)).load()


def frame(body: bytes, settings_print: bytes, at: float, position: str) -> bytes:
    """The blob stored: header, digest, body (off the loop: it hashes the whole body)."""
    version, pos = VERSION.encode(), position.encode()
    head = (MAGIC + _HEAD.pack(FORMAT, 0, settings_print, at, len(pos), len(body))
            + struct.pack("<H", len(version)) + version + pos)
    digest = hashlib.blake2b(head, digest_size=_DIGEST)
    digest.update(body)
    return head + digest.digest() + body


def unframe(blob: bytes) -> tuple[Header, bytes]:
    """Header and body of a stored blob; CheckpointError when it is damaged or foreign."""
    view = memoryview(blob)
    if bytes(view[:len(MAGIC)]) != MAGIC:
        raise CheckpointError("corrupt", "not a wallboard checkpoint (magic)")
    at = len(MAGIC)
    try:
        fmt, _, settings_print, taken, pos_len, body_len = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        (version_len,) = struct.unpack_from("<H", view, at)
        at += 2
        version = bytes(view[at:at + version_len]).decode()
        at += version_len
        position = bytes(view[at:at + pos_len]).decode()
        at += pos_len
    except (struct.error, UnicodeDecodeError) as exc:
        raise CheckpointError("corrupt", f"the header does not decode ({exc})") from None
    if fmt != FORMAT:
        raise CheckpointError("version", f"format {fmt}, this wallboard reads {FORMAT}")
    if version != VERSION:
        # The classes pickled may have changed shape between versions: fold afresh.
        raise CheckpointError("version", f"written by wallboard {version}, this is {VERSION}")
    head, stored = view[:at], bytes(view[at:at + _DIGEST])
    body = view[at + _DIGEST:]
    if len(body) != body_len:
        raise CheckpointError("corrupt", f"body of {len(body)} bytes, the header says "
                              f"{body_len}")
    digest = hashlib.blake2b(head, digest_size=_DIGEST)
    digest.update(body)
    if digest.digest() != stored:
        raise CheckpointError("corrupt", "checksum mismatch")
    return Header(fmt, version, settings_print, taken, position), bytes(body)


def capture(pipeline: Pipeline, history: History | None) -> dict[str, Any]:
    """The state to pickle, as references (pickle it before the loop runs on: consistency)."""
    agg = pipeline.aggregator
    # The timers' tie-breaking sequence goes on from the same number after a load.
    seq = next(agg._seq)
    agg._seq = itertools.count(seq)
    fold = {name: getattr(agg, name) for name in FOLD_FIELDS}
    configured = agg.settings.queues
    # Learnt queues by channel, in order (the snapshot lists queues in this order).
    queues = [(name, None if name in configured else cfg.channel)
              for name, cfg in agg.queue_configs.items()]
    state: dict[str, Any] = {"fold": fold, "seq": seq, "queues": queues,
                             "refused": dict(agg.refused), "seen": _ids(pipeline._seen)}
    if history is not None:
        state["history"] = {"step_s": history.step_s, "samples": history.samples,
                            "past": history.past, "last_slot": history.last_slot}
    return state


def _ids(seen: Recent) -> bytes:
    """The de-duplication cache as JSON: twice as fast as pickling its (source, id) tuples."""
    return orjson.dumps([seen._generation * 2, list(seen._newer), list(seen._older)])


def _recent(blob: bytes) -> Recent:
    size, newer, older = orjson.loads(blob)
    seen = Recent(size)
    seen._newer, seen._older = set(map(tuple, newer)), set(map(tuple, older))
    return seen


def take(pipeline: Pipeline, history: History | None) -> bytes:
    """Pickle the state now: on the loop, between two folds (the pause the metric shows)."""
    return dumps(capture(pipeline, history))


def apply(body: bytes, pipeline: Pipeline, history: History | None) -> None:
    """Load a body into a fresh pipeline; CheckpointError (nothing changed) when it is unfit."""
    try:
        state = loads(body)
        fold, queues = state["fold"], state["queues"]
        checks = [isinstance(fold, dict) and set(fold) == set(FOLD_FIELDS),
                  isinstance(fold.get("leaves"), dict), isinstance(fold.get("timers"), list),
                  isinstance(state["seq"], int), isinstance(queues, list),
                  isinstance(state["refused"], dict), isinstance(state["seen"], bytes)]
        if not all(checks):
            raise CheckpointError("corrupt", "the body does not have the fold's shape")
        seen = _recent(state["seen"])
    except CheckpointError:
        raise
    except Exception as exc:  # a damaged pickle raises nearly anything
        raise CheckpointError("corrupt", f"the body does not load ({exc!r:.200})") from None
    agg = pipeline.aggregator
    configs: dict[str, QueueConfig] = {}
    for name, channel in queues:
        configs[name] = agg.settings.queues.get(name) or QueueConfig(channel=channel)
    for name, value in fold.items():
        setattr(agg, name, value)
    agg.queue_configs = configs
    agg._seq = itertools.count(state["seq"])
    # In place: the pipeline's `rejected` is the same Counter.
    agg.refused.clear()
    agg.refused.update(state["refused"])
    pipeline._seen = seen
    saved = state.get("history")
    if history is not None and saved is not None and saved["step_s"] == history.step_s:
        # Keys the boards still chart; a key added since starts empty, as without a checkpoint.
        for key in history.keys:
            if key in saved["samples"]:
                history.samples[key] = saved["samples"][key]
                history.past[key] = saved["past"].get(key, [])
        history.last_slot = saved["last_slot"]
