"""The config file at run time: re-read when it changes, applied only if all of it is valid.

Only the `access` section takes effect without a restart. Every other section is validated on
each change too, so that an edit the next start would refuse is reported now (log, /healthz,
/metrics) instead of being taken for a successful reload; the last good configuration stays
in force and the boards keep showing their numbers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from wallboard.config.file import ConfigError, read_config_file
from wallboard.config.settings import Settings, SourceCheck, parse_settings
from wallboard.server.access import Access

log = logging.getLogger(__name__)

# (mtime, size, inode): an editor that truncates then writes within one timestamp tick, or
# replaces the file by a rename, still shows as a change.
Signature = tuple[int, int, int]


class ConfigWatcher:
    """The outcome of the last load of the config file, and its re-reads."""

    def __init__(self, path: str | Path | None, running: Settings, access: Access,
                 clock: Callable[[], float] = time.time,
                 source_check: SourceCheck | None = None) -> None:
        self.path = Path(path) if path else None
        # A copy: what the file said at start, to tell which sections an edit changed.
        self.running = running.model_copy(deep=True)
        self.access = access
        self.source_check = source_check  # the sources' own models, as a start checks them
        self.clock = clock
        self.signature = self._signature()
        self.ok = True
        self.error: str | None = None
        self.loaded_at = clock()
        self.restart_pending: list[str] = []

    def _signature(self) -> Signature | None:
        try:
            st = os.stat(self.path) if self.path else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None

    def _load(self) -> Settings:
        """Read and validate the whole file as a start would (runs in a thread)."""
        assert self.path is not None
        where = str(self.path)
        return parse_settings(read_config_file(self.path), where, self.source_check)

    async def refresh(self) -> bool:
        """Re-read the file if it changed; True when the access settings in force changed."""
        signature = self._signature()
        if signature is None or signature == self.signature:
            return False
        self.signature = signature
        try:
            # Off the event loop: a large file takes a while to parse and validate.
            settings = await asyncio.to_thread(self._load)
        except ConfigError as exc:
            self._failed("\n".join(exc.problems))
            return False
        except Exception as exc:  # a validator's bug must not end the watch for good
            log.exception("config %s: unexpected error while re-reading it", self.path)
            self._failed(f"{self.path}: unexpected error: {exc!r}")
            return False
        return self._apply(settings)

    def _failed(self, error: str) -> None:
        self.access.failed(error)
        if error != self.error:  # once per distinct error, not at every save of the same one
            log.error("config %s not reloaded, the previous configuration stays in force:\n%s",
                      self.path, error)
        self.ok, self.error = False, error

    def _apply(self, settings: Settings) -> bool:
        changed = self.access.apply(settings.access)
        self.restart_pending = [name for name in Settings.model_fields
                                if name != "access"
                                and getattr(settings, name) != getattr(self.running, name)]
        self.ok, self.error, self.loaded_at = True, None, self.clock()
        access = "access reloaded" if changed else "access unchanged"
        if self.restart_pending:
            log.warning("config %s re-read: %s; %s changed and take effect at the next restart",
                        self.path, access, ", ".join(self.restart_pending))
        else:
            log.info("config %s re-read: %s", self.path, access)
        return changed

    def health(self) -> dict[str, Any]:
        """What /healthz shows under "config"."""
        return {"reload_ok": self.ok, "error": self.error, "loaded_at": self.loaded_at,
                "file": str(self.path) if self.path else None,
                "restart_pending": self.restart_pending}


class ConfigCollector:
    """Prometheus view of the config reloads, like Prometheus' own."""

    def __init__(self, watcher: ConfigWatcher) -> None:
        self.watcher = watcher

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        watcher = self.watcher
        yield GaugeMetricFamily(
            "wallboard_config_reload_success",
            "1 if the config file was valid when last read (at start or after an edit)",
            value=1 if watcher.ok else 0)
        yield GaugeMetricFamily(
            "wallboard_config_last_reload_success_timestamp_seconds",
            "When the config file was last read and found valid", value=watcher.loaded_at)
        yield GaugeMetricFamily(
            "wallboard_config_restart_pending",
            "1 if the file changes a section other than access: it takes effect at a restart",
            value=1 if watcher.restart_pending else 0)
