"""`wallboard journal export|stats` against a real journal file."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from wallboard.cli import main
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.journal.cli import parse_when
from wallboard.journal.sqlite_backend import SqliteJournal
from wallboard.model.events import parse_event

NOW = datetime(2026, 11, 18, 9, 30, tzinfo=UTC).timestamp()  # 11:30 in Jerusalem


def when(text: str, timezone: str = "UTC") -> float:
    return parse_when(text, parse_settings({"site": {"timezone": timezone}}), NOW)


def test_times_are_rfc3339_epoch_words_or_relative() -> None:
    assert when("2026-11-18T08:00:00+02:00") == NOW - 3.5 * 3600
    assert when("1795000000") == 1_795_000_000.0
    assert when("now") == NOW
    assert when("now-15m") == when("-15m") == NOW - 900
    assert when("now-2d") == NOW - 2 * 86_400
    assert when("today", "Asia/Jerusalem") == datetime(2026, 11, 17, 22, tzinfo=UTC).timestamp()
    assert when("yesterday", "Asia/Jerusalem") == \
        datetime(2026, 11, 16, 22, tzinfo=UTC).timestamp()
    with pytest.raises(argparse.ArgumentTypeError, match="not a time: 'last tuesday'"):
        when("last tuesday")


@pytest.fixture
async def journal_dir(tmp_path: Path) -> Path:
    """A journal with 30 events from two sources, an hour apart in event time, then closed."""
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path / "data")))
    journal.open()
    journal.start()
    for n in range(30):
        source = "pbx" if n % 3 else "survey"
        event = parse_event({"type": "contact.queued", "id": f"e{n}", "ts": NOW + n * 3600,
                             "queue": "sales", "contact_id": f"c{n}"}, source)
        await journal.append([event], NOW + n * 3600 + 1)
    await journal.close()
    return tmp_path / "data"


def test_export_writes_the_events_between_since_and_until(journal_dir: Path,
                                                          capsysbinary) -> None:
    since = datetime.fromtimestamp(NOW + 5 * 3600, UTC).isoformat()
    assert main(["journal", "export", "--data-dir", str(journal_dir), "--since", since,
                 "--until", str(NOW + 9 * 3600)]) == 0
    out, err = capsysbinary.readouterr()
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert [e["id"] for e in lines] == ["e5", "e6", "e7", "e8", "e9"]
    assert lines[0] == {"type": "contact.queued", "ts": NOW + 5 * 3600, "id": "e5",
                        "source": "pbx", "queue": "sales", "contact_id": "c5"}
    assert b"5 events from" in err


def test_stats_counts_events_bytes_and_sources(journal_dir: Path, capsys) -> None:
    assert main(["journal", "stats", "--data-dir", str(journal_dir)]) == 0
    out = capsys.readouterr().out
    assert "events: 30\n" in out
    assert "sources: pbx 20, survey 10\n" in out
    first = datetime.fromtimestamp(NOW, UTC).isoformat(timespec="seconds")
    last = datetime.fromtimestamp(NOW + 29 * 3600, UTC).isoformat(timespec="seconds")
    assert f"event time: {first} .. {last}\n" in out
    size = sum(os.path.getsize(p) for p in journal_dir.glob("journal.sqlite3*")
               if not str(p).endswith("-shm"))
    assert f"bytes: {size:,} ({size / 30:,.1f} bytes/event)\n" in out


def test_a_missing_journal_or_a_bad_time_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["journal", "stats", "--data-dir", str(tmp_path / "none")]) == 2
    assert f"error: journal: {tmp_path / 'none' / 'journal.sqlite3'}: no journal here" in \
        capsys.readouterr().err
    (tmp_path / "data").mkdir()
    SqliteJournal(JournalConfig(data_dir=str(tmp_path / "data"))).open()
    assert main(["journal", "export", "--data-dir", str(tmp_path / "data"),
                 "--since", "soon"]) == 2
    assert "error: not a time: 'soon'" in capsys.readouterr().err
