"""The Redis Streams journal on a real redis-server: fencing, leases, de-dup, read, trim, errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port
from tests.redisproc import RedisServer
from wallboard.cluster.lease import Cluster
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.journal.interface import JournalFenced
from wallboard.journal.redis_backend import RedisJournal
from wallboard.kit.source import STANDBY, UP, PushSource, SourceConfig, SourceRunner
from wallboard.model.events import Event


def config(url: str, **extra: Any) -> JournalConfig:
    """A redis journal configuration for `url`."""
    return JournalConfig(backend="redis", url=url, retry_s=0.2, timeout_s=1.0, **extra)


@pytest.fixture
async def journals(redis_server: RedisServer) -> AsyncIterator[list[RedisJournal]]:
    """Two started journals on the same stream: two nodes in one process."""
    made = []
    for name in ("n1", "n2"):
        journal = RedisJournal(config(redis_server.url, node=name, lease_s=2))
        journal.open()
        journal.last_id = b"0-0"
        delivered: list[tuple[float, Event]] = []
        journal.deliver = delivered.extend
        journal.delivered = delivered  # type: ignore[attr-defined]
        journal.start()
        made.append(journal)
    yield made
    for journal in made:
        await journal.close()


def call(n: int, source: str = "hook", with_id: bool = True) -> Event:
    """A contact.queued event."""
    return Event(type="contact.queued", ts=time.time(), queue="sales", contact_id=f"c{n}",
                 id=f"q{n}" if with_id else None, source=source)


async def eventually(check: Any, timeout: float = 5.0) -> None:
    """Wait until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_ids_stored_by_another_node_are_duplicates_and_each_node_folds_each_event_once(
        journals: list[RedisJournal]) -> None:
    n1, n2 = journals
    assert await n1.append([call(1), call(2), call(3, with_id=False)], time.time()) == []
    # A retry through the other node: 1 and 2 are known (by position); an event without an id
    # never is.
    assert await n2.append([call(1), call(2), call(4), call(3, with_id=False)],
                           time.time()) == [0, 1]
    for journal in journals:
        await eventually(lambda j=journal: len(j.delivered) == 5)
    for journal in journals:
        got = [(e.contact_id, e.id) for _, e in journal.delivered]
        assert got == [("c1", "q1"), ("c2", "q2"), ("c3", None), ("c4", "q4"), ("c3", None)]
        assert journal.lag == 0 and journal.folded_n == 5


async def test_a_stale_lease_holder_is_refused_and_stops_its_source(
        journals: list[RedisJournal]) -> None:
    n1, n2 = journals
    c1, c2 = Cluster(n1), Cluster(n2)
    assert c1.ttl_ms == 1400  # lease_s 2: 1.4 s to live, renewed every 0.2 s

    class Pbx(PushSource):
        type = "pbx"

        async def run(self, emit: Any) -> None:
            self.connected()
            await asyncio.Event().wait()

    runners = [SourceRunner(Pbx("pbx", SourceConfig(type="pbx")), lambda e: None)
               for _ in range(2)]
    holds = [asyncio.create_task(c.hold(r, r.run)) for c, r in zip((c1, c2), runners,
                                                                   strict=True)]
    try:
        await eventually(lambda: bool(c1.held) or bool(c2.held))
        first, second = (c1, c2) if c1.held else (c2, c1)
        run_first, run_second = runners if first is c1 else runners[::-1]
        await eventually(lambda: run_first.status.status == UP)
        await asyncio.sleep(0.5)  # several renewals: the other node never gets it
        assert not second.held and run_second.status.status == STANDBY
        old = first.held["pbx"]
        fence = first.fence("pbx")
        assert await first.journal.append([call(10, "pbx")], time.time(), fence=fence()) == []
        # The holder stalls (a long GC pause, a partition): its lease expires and the other
        # node takes the source with a higher fencing token.
        await first.journal.redis.delete(first.lease_key("pbx"))
        await eventually(lambda: "pbx" in second.held)
        new = second.held["pbx"]
        assert int(new.rsplit(":", 1)[1]) > int(old.rsplit(":", 1)[1])
        with pytest.raises(JournalFenced):
            await first.journal.append([call(11, "pbx")], time.time(), fence=(fence()[0], old))
        await eventually(lambda: "pbx" not in first.held and run_first.status.status == STANDBY)
        assert await second.journal.append([call(12, "pbx")], time.time(),
                                           fence=second.fence("pbx")()) == []
        await eventually(lambda: len(n2.delivered) == 2)
        assert [e.contact_id for _, e in n2.delivered] == ["c10", "c12"]
        assert second.role == "active" and first.role == "standby"
    finally:
        for task in holds:
            task.cancel()
        await asyncio.gather(*holds, return_exceptions=True)


async def test_read_since_and_trim_by_arrival(redis_server: RedisServer) -> None:
    journal = RedisJournal(config(redis_server.url))
    journal.open()
    journal.start()
    try:
        for n in range(3):
            await journal.append([call(n), call(n + 10)], time.time())
            await asyncio.sleep(0.01)  # a later millisecond: a later entry id
        entries = journal._sync.xrange(journal.stream)
        assert len(entries) == 3
        second = int(entries[1][0].split(b"-")[0]) / 1000
        assert [e.contact_id for b in journal.read(second) for _, e in b] == \
            ["c1", "c11", "c2", "c12"]
        assert await journal.prune(second) == 1
        assert [e.contact_id for b in journal.read(0) for _, e in b] == \
            ["c1", "c11", "c2", "c12"]
        stats = journal.stats()
        assert (stats.events, stats.sources) == (4, {"hook": 4})
    finally:
        await journal.close()


def run_cli(tmp_path: Path, settings: dict[str, Any], *args: str, prelude: str = ""
            ) -> subprocess.CompletedProcess[str]:
    """`wallboard serve --config FILE` (or ARGS) with `prelude` run first in the process."""
    path = tmp_path / "wallboard.yaml"
    path.write_text(yaml.safe_dump(settings))
    code = (f"{prelude}\nimport sys\nfrom wallboard.cli import main\n"
            f"sys.exit(main({[*(args or ('serve',)), '--config', str(path)]!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


def test_config_errors_name_the_key_and_a_missing_package_or_server_is_clear(
        tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"f.yaml: journal.url: required when backend is redis"):
        parse_settings({"journal": {"backend": "redis"}}, "f.yaml")
    with pytest.raises(Exception, match=r"journal.url: 'http://x' is not a redis://"):
        parse_settings({"journal": {"backend": "redis", "url": "http://x"}}, "f.yaml")
    with pytest.raises(Exception, match=r"journal.lease_s: Input should be greater"):
        parse_settings({"journal": {"backend": "redis", "url": "redis://h", "lease_s": 0}})
    port = free_port()
    settings = {"journal": {"backend": "redis", "url": f"redis://127.0.0.1:{port}/0"}}
    result = run_cli(tmp_path, settings, prelude="import sys; sys.modules['redis'] = None")
    assert result.returncode == 2
    assert "error: journal: journal.backend: redis needs the Python package 'redis'" \
        in result.stderr
    result = run_cli(tmp_path, settings)  # nothing listens on that port
    assert result.returncode == 2, result.stderr
    assert f"error: journal: redis://127.0.0.1:{port}/0 stream {{wallboard}}:events: " \
           f"cannot connect" in result.stderr


async def test_the_pipeline_folds_only_what_the_stream_delivers_and_counts_fenced_events(
        redis_server: RedisServer) -> None:
    settings = parse_settings({"queues": {"sales": {"channel": "voice"}},
                               "journal": {"backend": "redis", "url": redis_server.url}})
    journal = RedisJournal(settings.journal)
    journal.open()
    journal.last_id = b"0-0"
    pipeline = Pipeline(Aggregator(settings, time.time), journal=journal)
    delivered: list[int] = []

    def deliver(batch: list[tuple[float, Event]]) -> None:
        delivered.append(len(batch))
        pipeline.apply(batch)

    journal.deliver = deliver
    journal.start()
    try:
        lease = f"{journal.prefix}:lease:pbx"
        await journal.redis.set(lease, "other:7")
        pipeline.ingest(call(1, "pbx"), fence=(lease, "me:3"))  # a stale holder
        pipeline.ingest(call(2, "pbx"), fence=(lease, "other:7"))
        assert pipeline.accepted == {}  # nothing folded when appended: only from the stream
        await eventually(lambda: pipeline.accepted.get("pbx") == 1)
        await asyncio.sleep(0.2)
        assert pipeline.rejected["fenced"] == 1 and pipeline.accepted == {"pbx": 1}
        assert sum(delivered) == 1 and pipeline.unstored == 0
        # Appended here but already in the stream from elsewhere: a duplicate, folded once.
        assert pipeline.ingest(call(2, "pbx"), fence=(lease, "other:7")) == "duplicate"
    finally:
        await journal.close()


async def test_while_redis_is_down_the_holder_stops_its_source_and_takes_it_again_after(
        journals: list[RedisJournal], redis_server: RedisServer) -> None:
    n1 = journals[0]
    cluster = Cluster(n1)

    class Poller(PushSource):
        type = "poller"

        async def run(self, emit: Any) -> None:
            self.connected()
            await asyncio.Event().wait()

    runner = SourceRunner(Poller("rt", SourceConfig(type="poller")), lambda e: None)
    hold = asyncio.create_task(cluster.hold(runner, runner.run))
    try:
        await eventually(lambda: runner.status.status == UP)
        first = cluster.held["rt"]
        redis_server.stop()
        # It cannot renew: it stops the source (1.2 s after its last renewal, before the 1.4 s
        # lease could expire in Redis and another node take it).
        await eventually(lambda: runner.status.status == STANDBY, timeout=3)
        assert not cluster.held
        redis_server.start()
        await eventually(lambda: runner.status.status == UP, timeout=10)
        assert int(cluster.held["rt"].rsplit(":", 1)[1]) > int(first.rsplit(":", 1)[1])
        assert cluster.takeovers == 2
    finally:
        hold.cancel()
        await asyncio.gather(hold, return_exceptions=True)
