"""The ingest API for sources fed by HTTP requests: hand over events, get back what became of them.

A plugin's route finds its source (`Ingest.find`), turns the vendor's payload into raw event
objects, and hands them over: `Ingest.each` keeps the valid ones and lists the refused ones by
position (a batch endpoint); `Ingest.all` takes all or none (a callback that is one unit). Then
`Ingest.store` makes them durable and folds them, and its `Stored` says what to answer: how many
were accepted, duplicates, late or failed, or that the journal is down (nothing was stored, the
sender must retry). The server builds one `Ingest` at start under the `INGEST` key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from wallboard.ingest.pipeline import Ack, Pipeline
from wallboard.journal.interface import JournalDown
from wallboard.kit.http import Rejections, ack_answer, ack_headers, journal_down
from wallboard.kit.source import Source, SourceRunner
from wallboard.model.events import Event, EventError

S = TypeVar("S", bound=Source[Any])
YIELD_EVERY = 2000  # events validated between two yields to the event loop
NOTHING = Ack(0, 0, 0, 0)


@dataclass(frozen=True)
class Stored:
    """What became of the events handed to `Ingest.store`: an `Ack`, or the journal was down."""

    ack: Ack = NOTHING
    down: JournalDown | None = None  # set: nothing was stored or counted; the sender retries

    def answer(self) -> dict[str, int]:
        """`accepted`, `duplicates`, `late` and `failed`, for a JSON answer."""
        return ack_answer(self.ack)

    def headers(self) -> dict[str, str]:
        """The same as `X-Wallboard-*` headers, for a vendor that expects an empty answer."""
        return ack_headers(self.ack)

    def retry_later(self) -> web.Response:
        """503 with Retry-After, for a journal that is down (`down` must be set)."""
        if self.down is None:
            raise ValueError("the events were stored: there is nothing to retry")
        return journal_down(self.down)


def stamp(runner: SourceRunner) -> str:
    """The name a source's events are stored under: its id_scope, else its own."""
    return runner.source.config.id_scope or runner.name


class Ingest:
    """The events of HTTP-fed sources: validation, admission, storage, refusals counted."""

    def __init__(self, pipeline: Pipeline, runners: Mapping[str, SourceRunner]) -> None:
        self._pipeline = pipeline
        self._runners = runners
        server = pipeline.aggregator.settings.server
        self.max_body_bytes = server.max_body_bytes  # a request body's limit, in bytes
        self.max_batch_events = server.max_batch_events  # events one request may carry

    def find(self, name: str, kind: type[S]) -> tuple[SourceRunner, S] | None:
        """The runner and source `name` if it is a `kind` (a plugin's own class), else None."""
        runner = self._runners.get(name)
        if runner is None or not isinstance(runner.source, kind):
            return None
        return runner, runner.source

    def runners(self, kind: type[S]) -> Iterator[tuple[SourceRunner, S]]:
        """Every runner and source that is a `kind`, e.g. to find whose token a request has."""
        for runner in self._runners.values():
            if isinstance(runner.source, kind):
                yield runner, runner.source

    def refused(self, reason: str) -> None:
        """Count a request refused before its events were read (no source, bad signature...).

        Counted in `wallboard_events_rejected_total{reason}`; a refusal of a known source is
        also counted per source with `wallboard.kit.http.refuse` or `count`.
        """
        self._pipeline.reject(reason)

    def all(self, runner: SourceRunner, raws: Iterable[Any]) -> list[Event]:
        """Every raw event validated and admitted, or EventError for the first that is not."""
        name = stamp(runner)
        events = [self._pipeline.parse(raw, name) for raw in raws]
        for event in events:
            self._pipeline.admit(event)
        return events

    async def each(self, runner: SourceRunner, items: Iterable[tuple[int, Any]],
                   position: str = "index") -> tuple[list[Event], Rejections]:
        """The valid events of `(where, raw)` items, and the refused ones by `position` `where`.

        `position` names the place in the answer: "index" (0-based, JSON) or "line" (1-based).
        """
        events: list[Event] = []
        rejections = Rejections()
        name = stamp(runner)
        for n, (where, raw) in enumerate(items, start=1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long batch must not hold up boards and probes
            try:
                event = self._pipeline.parse(raw, name)
                self._pipeline.admit(event)
            except EventError as exc:
                rejections.add(position, where, exc)
                continue
            events.append(event)
        return events, rejections

    async def store(self, runner: SourceRunner, events: list[Event]) -> Stored:
        """Make events durable and fold them (the source counts as heard from if any)."""
        if events:
            runner.touch()
        try:
            return Stored(await self._pipeline.ingest_acknowledged(events))
        except JournalDown as exc:
            return Stored(down=exc)


INGEST: web.AppKey[Ingest] = web.AppKey("wallboard.kit.ingest", Ingest)
