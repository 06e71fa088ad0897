"""Several nodes on one Redis stream: a lease per source, and what /healthz and /metrics say.

A source that connects somewhere (a PBX login, a helpdesk poll) runs on one node at a time:
the node holding its lease (`SET NX PX`, renewed, with a fencing token in its value that the
append script checks). When the holder dies the lease expires and another node takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from wallboard.journal.redis_backend import RedisJournal
from wallboard.journal.redis_scripts import ACQUIRE_LUA, RELEASE_LUA, RENEW_LUA
from wallboard.kit.source import DOWN, SourceRunner

log = logging.getLogger(__name__)
TTL_SHARE = 0.7  # lease time to live, as a share of lease_s
STEP_SHARE = 0.1  # renewals and attempts to take a free lease, as a share of lease_s


def default_node() -> str:
    """host-pid: unique per process, readable in logs."""
    return f"{socket.gethostname()}-{os.getpid()}"[:64]


class Cluster:
    """This node among others: its name, the leases it holds, its lag behind the stream."""

    def __init__(self, journal: RedisJournal) -> None:
        config = journal.config
        self.journal = journal
        self.node = config.node or default_node()
        self.lease_s = config.lease_s
        self.ttl_ms = int(config.lease_s * TTL_SHARE * 1000)
        self.step_s = config.lease_s * STEP_SHARE
        self.held: dict[str, str] = {}  # source -> lease value
        self.sources: list[str] = []  # sources run under a lease
        self.takeovers = 0  # leases this node acquired

    def lease_key(self, source: str) -> str:
        """The Redis key of a source's lease."""
        return f"{self.journal.prefix}:lease:{source}"

    def fence(self, source: str) -> Callable[[], tuple[str, str] | None]:
        """What the source's events carry to the append script: (lease key, our value)."""
        key = self.lease_key(source)
        held = self.held
        return lambda: (key, held[source]) if source in held else (key, "not-held")

    @property
    def role(self) -> str:
        """'active' when it runs at least one source, 'standby' otherwise (both serve boards)."""
        return "active" if self.held else "standby"

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            async with asyncio.timeout(self.journal.config.timeout_s):
                return await self.journal.redis.eval(script, len(keys), *keys, *args)
        finally:
            # The Redis client can swallow a cancel that lands inside a command (seen as a
            # test hanging in teardown); the task still counts it, so it is raised here.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError

    async def hold(self, runner: SourceRunner,
                   run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `run` only while this node holds the source's lease; forever, until cancelled."""
        name = runner.name
        key, fence = self.lease_key(name), f"{self.journal.prefix}:fence:{name}"
        self.sources.append(name)
        runner.set_standby()
        while True:
            try:
                value = await self._call(ACQUIRE_LUA, [key, fence], [self.node, self.ttl_ms])
            except Exception as exc:  # Redis down: nobody can take it; try again
                log.debug("lease %s: %s", name, exc)
                value = None
            if not value:
                await asyncio.sleep(self.step_s)
                continue
            value = value.decode() if isinstance(value, bytes) else str(value)
            self.held[name] = value
            self.takeovers += 1
            log.info("lease: %s now runs source %s (%s)", self.node, name, value)
            task = asyncio.create_task(run(), name=f"source:{name}")
            try:
                await self._keep(name, key, value, task)
            finally:
                self.held.pop(name, None)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                runner.set_standby()
                # Also on shutdown: another node takes the source at its next try, not
                # after the lease expired.
                with contextlib.suppress(Exception):
                    await self._call(RELEASE_LUA, [key], [value])

    async def _keep(self, name: str, key: str, value: str, task: asyncio.Task[None]) -> None:
        """Renew until the lease is lost, or could not be renewed before it expires."""
        renewed = time.monotonic()
        # Stop before the lease can expire in Redis: then no two nodes run the source at once.
        give_up = (self.ttl_ms / 1000) - self.step_s
        while not task.done():
            await asyncio.sleep(self.step_s)
            try:
                if await self._call(RENEW_LUA, [key], [value, self.ttl_ms]):
                    renewed = time.monotonic()
                    continue
                log.warning("lease: %s lost source %s to another node", self.node, name)
            except Exception as exc:
                if time.monotonic() - renewed < give_up:
                    continue
                log.warning("lease: %s stops source %s: cannot renew its lease: %s",
                            self.node, name, exc)
            return

    async def share(self, runners: dict[str, SourceRunner]) -> None:
        """Publish the status of the sources run here; show the others' as their node reports.

        Every node's boards then badge a source that is down wherever it runs.
        """
        key = f"{self.journal.prefix}:sources"
        stale_s = self.ttl_ms / 1000 + 2 * self.step_s
        while True:
            await asyncio.sleep(self.step_s)
            now = time.time()
            mine = {name: orjson.dumps({
                "status": r.status.status, "last_error": r.status.last_error,
                "last_event_ts": r.status.last_event_ts, "events": r.status.events,
                "node": self.node, "at": now})
                for name, r in runners.items() if name in self.held}
            try:
                async with asyncio.timeout(self.journal.config.timeout_s):
                    if mine:
                        await self.journal.redis.hset(key, mapping=mine)
                    theirs = await self.journal.redis.hgetall(key)
            except Exception as exc:  # Redis down: the journal reports it; keep what we show
                log.debug("source status: %s", exc)
                continue
            for name in self.sources:
                raw = theirs.get(name.encode())
                if name in self.held or name not in runners or raw is None:
                    continue
                info = orjson.loads(raw)
                if now - info["at"] > stale_s:  # its node died and nobody took it over yet
                    runners[name].mirror(DOWN, f"no node runs it (last: {info['node']})",
                                         info["last_event_ts"], info["events"])
                else:
                    runners[name].mirror(info["status"], info["last_error"],
                                         info["last_event_ts"], info["events"])

    def health(self) -> dict[str, Any]:
        """What /healthz adds for this node."""
        delays = list(self.journal.delays)
        return {"node": self.node, "role": self.role, "journal": self.journal.status.state,
                "stream_lag_events": self.journal.lag, "sources_held": sorted(self.held),
                "sources_leased": sorted(self.sources),
                "apply_delay_s": {**_p50_p99(delays), "entries": len(delays)}}


def _p50_p99(values: list[float]) -> dict[str, float | None]:
    """The median and 99th percentile, from one sort of up to DELAYS_KEPT values."""
    if len(values) < 2:
        one = values[0] if values else None
        return {"p50": one, "p99": one}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p99": cuts[98]}


class ClusterCollector(Collector):
    """Per node: role, stream lag, the sources it holds (labels bounded by the config)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def collect(self) -> Iterator[Any]:
        """The cluster families, read from memory."""
        c = self.cluster
        node = GaugeMetricFamily("wallboard_node_info", "This node and its role",
                                 labels=["node", "role"])
        node.add_metric([c.node, c.role], 1)
        lag = GaugeMetricFamily("wallboard_stream_lag_events",
                                "Events in the stream this node has not folded yet")
        lag.add_metric([], c.journal.lag)
        held = GaugeMetricFamily("wallboard_source_held",
                                 "1 when this node holds the source's lease and runs it",
                                 labels=["source"])
        for name in c.sources:
            held.add_metric([name], 1 if name in c.held else 0)
        taken = CounterMetricFamily("wallboard_source_leases_acquired",
                                    "Source leases this node acquired")
        taken.add_metric([], c.takeovers)
        entries = CounterMetricFamily("wallboard_stream_entries_folded",
                                      "Stream entries folded since start")
        entries.add_metric([], c.journal.entries)
        journal = c.journal
        delay = SummaryMetricFamily("wallboard_stream_apply_delay_seconds",
                                    "From Redis storing an entry to this node folding it "
                                    "(quantiles over the last 10,000 entries)",
                                    count_value=journal.entries, sum_value=journal.delay_sum)
        for q, value in zip(("0.5", "0.99"), _p50_p99(list(journal.delays)).values(),
                            strict=True):
            if value is not None:
                delay.add_sample("wallboard_stream_apply_delay_seconds", {"quantile": q}, value)
        yield from (node, lag, held, taken, entries, delay)
