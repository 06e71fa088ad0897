"""The source contract: tests every source plugin inherits by declaring its config and peer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from wallboard.config.settings import format_validation_error
from wallboard.kit.source import DOWN, STARTING, UP, Source, SourceConfig

from .harness import ContractViolation, LoopWatch, SourceHarness, run_isolated
from .peer import PEER_TASK, HttpReplay, ReplayPeer, TcpReplay

WHERE = "wallboard.yaml"
# Checks a source may declare not applicable, with a reason, in `not_applicable`.
EVENTS, PEER_DROP, MALFORMED = "events", "peer_drop", "malformed_payload"
_PLACEHOLDER_PEER = "http://127.0.0.1:9"  # for config checks, which need no live peer


def default_malformed(recording: bytes) -> list[bytes]:
    """Bad payloads every peer-fed source must survive: cut, empty, garbage, wrong shapes."""
    return [recording[: max(1, len(recording) // 2)], b"", b"\x00\xff\xfe not json at all",
            b"null", b"[]", b"{}", b'"text"', b"42", b'[{"unexpected": true}]',
            b'{"unexpected": [1, 2, 3]}']


def _fill(value: Any, peer: ReplayPeer | None) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, peer) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, peer) for v in value]
    if isinstance(value, str) and "{peer_" in value:
        host, port = (peer.host, peer.port) if peer else ("127.0.0.1", 9)
        url = peer.url if peer else _PLACEHOLDER_PEER
        filled = value.format(peer_url=url, peer_host=host, peer_port=port)
        return int(filled) if value == "{peer_port}" else filled
    return value


def _short(payload: bytes) -> str:
    return repr(payload[:40]) + ("…" if len(payload) > 40 else "")


class SourceContract:
    """Subclass as `TestMySourceContract` and declare the class attributes below."""

    source_class: ClassVar[type[Source[Any]]]
    # A valid config (without `type`); strings may use {peer_url}, {peer_host}, {peer_port}.
    config: ClassVar[dict[str, Any]] = {}
    # (overrides of `config`, a fragment the error must contain); a None value drops the key.
    bad_configs: ClassVar[list[tuple[dict[str, Any], str]]] = []
    peer: ClassVar[HttpReplay | TcpReplay | None] = None
    malformed: ClassVar[list[bytes] | None] = None  # default: default_malformed(recording)
    not_applicable: ClassVar[dict[str, str]] = {}  # check name -> why it does not apply
    min_events: ClassVar[int] = 1
    timeout_s: ClassVar[float] = 5.0
    cancel_timeout_s: ClassVar[float] = 1.0
    slow_callback_s: ClassVar[float] = 0.05
    source_name: ClassVar[str] = "contract"

    # -- declaration helpers ------------------------------------------------------------------

    def make_config(self, peer: ReplayPeer | None) -> dict[str, Any]:
        """The declared config with the peer's address filled in and `type` added."""
        return {**_fill(self.config, peer), "type": self.source_class.type}

    def make_source(self, peer: ReplayPeer | None) -> Source[Any]:
        """A source instance for `peer`, validated like a configuration file would be."""
        config = self.source_class.Config.model_validate(self.make_config(peer))
        return self.source_class(self.source_name, config)

    def _label(self) -> str:
        return f"{self.source_class.__name__} ({self.source_class.type})"

    def _skip_unless_applicable(self, check: str, needs_peer: bool = False) -> None:
        if check in self.not_applicable:
            pytest.skip(f"{check}: {self.not_applicable[check]}")
        if needs_peer and self.peer is None:
            pytest.fail(f"{self._label()} declares no peer: set `peer` (HttpReplay or "
                        f"TcpReplay) or say why in not_applicable[{check!r}]", pytrace=False)

    def _run(self, check: Callable[[], Coroutine[Any, Any, None]]) -> None:
        problem = None
        try:
            run_isolated(check, grace_s=self.cancel_timeout_s)
        except ContractViolation as exc:
            problem = str(exc)
        if problem is not None:  # failed outside the except block: no chained traceback
            pytest.fail(f"{self._label()}: {problem}", pytrace=False)

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[tuple[SourceHarness, ReplayPeer | None]]:
        peer = ReplayPeer(self.peer) if self.peer is not None else None
        if peer is not None:
            await peer.start()
        harness = SourceHarness(self.make_source(peer))
        try:
            await harness.start()
            yield harness, peer
        finally:
            await harness.stop(self.cancel_timeout_s)
            if peer is not None:
                await peer.drop()

    async def _come_up(self, h: SourceHarness) -> None:
        await h.wait_for(lambda: h.status == UP, "come up", self.timeout_s)

    async def _drop_and_return(self, h: SourceHarness, peer: ReplayPeer) -> None:
        await peer.drop()
        await h.wait_for(lambda: h.status == DOWN, "go down when its peer dropped",
                         self.timeout_s)
        await peer.restore()
        await h.wait_for(lambda: h.status == UP, "come back up when its peer returned",
                         self.timeout_s)

    # -- the contract -------------------------------------------------------------------------

    def test_config_model_accepts_the_declared_config(self) -> None:
        """The declared config validates; the class has a type name and a SourceConfig model."""
        assert isinstance(getattr(self.source_class, "type", None), str), \
            f"{self.source_class.__name__} needs a `type` name (a str class attribute)"
        assert issubclass(self.source_class.Config, SourceConfig), \
            f"{self._label()}: Config must subclass wallboard.kit.source.SourceConfig"
        try:
            self.source_class.Config.model_validate(self.make_config(None))
        except ValidationError as exc:
            lines = format_validation_error(WHERE, exc, f"sources.{self.source_name}")
            pytest.fail(f"{self._label()}: the declared config is refused:\n"
                        + "\n".join(lines), pytrace=False)

    def test_config_model_rejects_bad_values_with_clear_messages(self) -> None:
        """Each declared bad config is refused with a message naming the key and the problem."""
        if not self.bad_configs:
            pytest.fail(f"{self._label()}: declare bad_configs, (overrides, expected message "
                        "fragment) pairs for the settings the source adds", pytrace=False)
        cases = [({"no_such_setting": 1}, "no_such_setting"), *self.bad_configs]
        for overrides, fragment in cases:
            raw = {**self.make_config(None), **overrides}
            raw = {k: v for k, v in raw.items() if v is not None}
            try:
                self.source_class.Config.model_validate(raw)
            except ValidationError as exc:
                lines = format_validation_error(WHERE, exc, f"sources.{self.source_name}")
                text = "\n".join(lines)
                assert fragment in text, (f"{self._label()}: bad config {overrides!r} was "
                                          f"refused, but no message mentions {fragment!r}:\n{text}")
            else:
                pytest.fail(f"{self._label()}: bad config {overrides!r} was accepted; the "
                            "config model must refuse it", pytrace=False)

    def test_every_emitted_event_is_valid(self) -> None:
        """Events emitted from the recording all pass the canonical event validation."""
        self._skip_unless_applicable(EVENTS)

        async def check() -> None:
            async with self._running() as (h, _):
                await h.wait_for(lambda: len(h.events) >= self.min_events,
                                 f"emit {self.min_events} event(s)", self.timeout_s)
                await h.settle(0.1)
            if h.invalid:
                shown = "\n".join(f"  {error}: {event!r}" for event, error in h.invalid[:3])
                raise ContractViolation(f"emitted {len(h.invalid)} invalid event(s) of "
                                        f"{len(h.events)}:\n{shown}")

        self._run(check)

    def test_reports_status_when_its_peer_drops_and_returns(self) -> None:
        """Statuses go starting → up → down → up as the peer goes away and comes back."""
        self._skip_unless_applicable(PEER_DROP, needs_peer=True)

        async def check() -> None:
            async with self._running() as (h, peer):
                assert peer is not None
                await self._come_up(h)
                await self._drop_and_return(h, peer)
                if h.statuses != [STARTING, UP, DOWN, UP]:
                    raise ContractViolation(f"reported {h.transitions()}; expected "
                                            "starting → up → down → up")

        self._run(check)

    def test_stops_cleanly_and_quickly_when_cancelled(self) -> None:
        """Cancelling the source's task ends it within `cancel_timeout_s`, leaving no task."""

        async def check() -> None:
            before = asyncio.all_tasks()
            async with self._running() as (h, _):
                await self._come_up(h)
                assert h.task is not None
                if not await h.stop(self.cancel_timeout_s):
                    raise ContractViolation(
                        f"ignores cancellation: still running {self.cancel_timeout_s:g}s after "
                        "its task was cancelled; let asyncio.CancelledError propagate (never "
                        "swallow it in a loop)")
                if not h.task.cancelled():
                    raise ContractViolation(f"ended with {h.task.exception()!r} instead of "
                                            "being cancelled")
                await asyncio.sleep(0.05)  # give its own tasks a moment to finish
                left = [t for t in asyncio.all_tasks() - before
                        if not t.done() and t.get_name() != PEER_TASK]
                if left:
                    raise ContractViolation(
                        f"left {len(left)} task(s) running after cancel: "
                        f"{', '.join(repr(t.get_coro()) for t in left)}; cancel them in a "
                        "finally block or use asyncio.TaskGroup")

        self._run(check)

    def test_never_blocks_the_event_loop(self) -> None:
        """No callback holds the loop longer than `slow_callback_s` (asyncio debug mode)."""

        async def check() -> None:
            with LoopWatch(self.slow_callback_s) as watch:
                async with self._running() as (h, peer):
                    await self._come_up(h)
                    if EVENTS not in self.not_applicable:
                        await h.wait_for(lambda: len(h.events) >= self.min_events,
                                         "emit events", self.timeout_s)
                    if peer is not None:  # exercise the reconnect path; statuses not judged
                        await peer.drop()
                        await h.settle(0.2)
                        await peer.restore()
                    await h.settle(0.2)
            if watch.slow:
                worst = max(watch.slow, key=lambda s: s.seconds)
                where = f", at {watch.blocked_at}" if watch.blocked_at else ""
                raise ContractViolation(
                    f"blocks the event loop: {worst.describe()} ran "
                    f"{worst.seconds * 1000:.0f} ms without yielding (limit "
                    f"{self.slow_callback_s * 1000:.0f} ms; {len(watch.slow)} slow "
                    f"callback(s)){where}; await I/O and move blocking or CPU-heavy work to "
                    "asyncio.to_thread()")

        self._run(check)

    def test_survives_malformed_payloads_from_its_peer(self) -> None:
        """Bad bytes from the peer never crash the source; it recovers on the next good ones."""
        self._skip_unless_applicable(MALFORMED, needs_peer=True)
        assert self.peer is not None
        payloads = self.malformed or default_malformed(self.peer.recording())

        async def check() -> None:
            async with self._running() as (h, peer):
                assert peer is not None
                await self._come_up(h)
                for payload in payloads:
                    await self._feed_malformed(h, peer, payload)

        self._run(check)

    async def _feed_malformed(self, h: SourceHarness, peer: ReplayPeer, payload: bytes) -> None:
        served, events = peer.served, len(h.events)
        if peer.spec.kind == "tcp":
            peer.send_next(payload + b"\n" + peer.recording)
            peer.hang_up()  # the source reconnects and reads the bad bytes first
        else:
            peer.send_next(payload)
        what = f"malformed payload {_short(payload)}"
        await h.wait_for(lambda: peer.served > served, f"read the {what} from its peer",
                         self.timeout_s)
        await h.wait_for(lambda: h.crashes > 0 or (h.status == UP and len(h.events) > events),
                         f"recover after the {what}", self.timeout_s)
        if h.crashes:
            raise ContractViolation(
                f"crashed on the {what}: {h.crash_errors[-1]}; raise SourceError for bad "
                "input from the peer (or skip the bad item)")
