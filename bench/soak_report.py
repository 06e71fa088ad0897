"""Soak bench, figures: per-minute rows, percentiles, slopes after the warm-up, the table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
# Lines about what the bench breaks on purpose: the flapping source (named `flap`).
INJECTED = re.compile(r"\bflap\b")


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: list[float]) -> dict[str, float | None]:
    """p50/p99/max in milliseconds of values in seconds."""
    out: dict[str, float | None] = {}
    for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        v = pct(values, q)
        out[name] = None if v is None else round(1000 * v, 1)
    out["n"] = len(values)
    return out


class LogCounter:
    """Counts the server log's lines by level as the file grows; keeps the unexpected ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.examples: list[str] = []  # ERROR lines and tracebacks not injected on purpose

    def read(self) -> dict[str, int]:
        """Counts of the lines written since the last call."""
        counts = {"INFO": 0, "WARNING": 0, "ERROR": 0, "CRITICAL": 0, "traceback": 0,
                  "never_retrieved": 0, "injected_warning": 0, "injected_error": 0, "other": 0}
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return counts
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            if "Traceback (most recent call last)" in line:
                counts["traceback"] += 1
                self._keep(line)
            if "never retrieved" in line:
                counts["never_retrieved"] += 1
            m = LEVEL.match(line)
            if m is None:
                counts["other"] += 1
                continue
            level = m.group(1)
            if level == "DEBUG":
                continue
            injected = bool(INJECTED.search(m.group(3)))
            if injected and level in ("WARNING", "ERROR", "CRITICAL"):
                counts["injected_" + ("warning" if level == "WARNING" else "error")] += 1
                continue
            counts[level] += 1
            if level in ("ERROR", "CRITICAL"):
                self._keep(line)
        return counts

    def _keep(self, line: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(line[:300])


def slope_per_hour(rows: list[dict[str, Any]], key: str, after_min: int) -> float | None:
    """Least-squares slope of `key` over the minutes past `after_min`, per hour."""
    points = [(r["minute"], r[key]) for r in rows if r["minute"] > after_min
              and r.get(key) is not None]
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    if not den:
        return None
    return round(60 * sum((x - mx) * (y - my) for x, y in points) / den, 2)


COLUMNS = [("minute", "min", 3), ("rss_mb", "RSS MB", 7), ("fds", "fds", 5),
           ("db_mb", "db MB", 7), ("wal_mb", "wal MB", 6), ("events", "events", 7),
           ("tvs_connected", "TVs", 4), ("probe_p50_ms", "ev>TV p50", 9),
           ("probe_p99_ms", "p99", 6), ("api_p50_ms", "api p50", 7), ("api_p99_ms", "p99", 6),
           ("metrics_p50_ms", "metr p50", 8), ("metrics_p99_ms", "p99", 6),
           ("health_p99_ms", "hz p99", 6), ("snapshots", "snaps", 5),
           ("server_closes", "cut", 4), ("log_info", "INFO", 5), ("log_warning", "WARN", 4),
           ("log_error", "ERR", 3), ("log_injected", "inj", 3), ("tracebacks", "tb", 2),
           ("load1", "load", 5)]


def table(rows: list[dict[str, Any]]) -> str:
    """The per-minute rows as a Markdown table."""
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---:" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for key, _, width in COLUMNS:
            value = row.get(key)
            cells.append(("-" if value is None else f"{value:g}" if isinstance(value, float)
                          else str(value)).rjust(width))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def window_p99(rows: list[dict[str, Any]], first: int, last: int) -> float | None:
    """The median of the per-minute probe p99s of minutes first..last (inclusive)."""
    values = [r["probe_p99_ms"] for r in rows
              if first <= r["minute"] <= last and r.get("probe_p99_ms") is not None]
    return pct(values, 0.5)
