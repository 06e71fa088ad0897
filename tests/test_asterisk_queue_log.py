"""asterisk_queue_log: lines to events, a file followed across rotations, the contract suite."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wallboard_plugins.asterisk_queue_log import AsteriskQueueLogSource
from wallboard_plugins.asterisk_queue_log.mapping import BadLine, Mapper, parse_line
from wallboard_plugins.asterisk_queue_log.tail import Follower, Position

from wallboard.kit.testing import (
    MALFORMED,
    PEER_DROP,
    SourceContract,
    SourceHarness,
    VirtualClock,
)
from wallboard.model.events import EventError, parse_event

SAMPLE = Path(__file__).parent / "data" / "asterisk_queue_log" / "queue_log"


def events_of(lines: list[bytes], queues: dict[str, str] | None = None) -> tuple[list[dict],
                                                                                 Mapper]:
    mapper = Mapper(lambda q: (queues or {}).get(q, q))
    out: list[dict] = []
    for raw in lines:
        out += mapper.handle(parse_line(raw))
    return out, mapper


def test_the_sample_morning_maps_to_the_hand_counted_events() -> None:
    events, mapper = events_of(SAMPLE.read_bytes().splitlines())
    kinds = [(e["type"], e.get("contact_id") or e.get("agent"), e.get("state")) for e in events]
    assert kinds == [
        ("agent.state", "Alice", "available"), ("agent.state", "Bob", "available"),
        ("contact.queued", "1796630455.11", None),
        ("contact.answered", "1796630455.11", None), ("agent.state", "Alice", "busy"),
        ("contact.ended", "1796630455.11", None), ("agent.state", "Alice", "available"),
        ("contact.queued", "1796630598.13", None), ("contact.abandoned", "1796630598.13", None),
        ("agent.state", "Bob", "away"),
        ("contact.queued", "1796630705.14", None), ("contact.transferred", "1796630705.14", None),
        ("contact.queued", "1796631015.15", None),
        ("contact.answered", "1796631015.15", None), ("agent.state", "Alice", "busy"),
        ("contact.ended", "1796631015.15", None), ("contact.transferred", "1796631015.15", None),
        ("agent.state", "Alice", "available"), ("agent.state", "Bob", "available")]
    by_id = {e["id"]: e for e in events if e["type"].startswith("contact.")}
    # The ids asterisk_ami gives the same facts: with both on, the journal keeps one.
    assert by_id["1796630455.11@sales:answered"]["wait_s"] == 12.0
    assert by_id["1796630455.11@sales:ended"]["talk_s"] == 118.0
    assert by_id["1796630598.13@sales:abandoned"]["wait_s"] == 40.0
    assert by_id["1796630705.14@sales:transferred"]["wait_s"] == 300.0  # a timeout: flow-out
    assert by_id["1796631015.15@sales:ended"]["talk_s"] == 60.0
    away = next(e for e in events if e.get("state") == "away")
    assert away["reason"] == "Lunch" and away["ts"] == 1796630700.0
    assert mapper.ignored == {"QUEUESTART": 1, "RINGNOANSWER": 1}


def test_version_differences_and_agents_across_queues() -> None:
    """Asterisk 1.8's shorter exits, 12+'s attended transfer, pause-all and log-off."""
    events, mapper = events_of([
        b"100|NONE|sales|Ann|ADDMEMBER|", b"101|NONE|support|Ann|ADDMEMBER|",
        b"102|NONE|sales|Ann|PAUSE|Training", b"103|1.1|sales|NONE|ENTERQUEUE||x|1",
        b"104|1.1|sales|NONE|EXITWITHTIMEOUT|1",  # 1.8: position only, no wait
        b"105|1.2|support|NONE|ENTERQUEUE||y|1", b"106|1.2|support|NONE|EXITWITHKEY|5|1|1|7",
        b"107|1.3|support|NONE|ENTERQUEUE||z|1", b"108|1.3|support|Ann|CONNECT|4|1.4|1",
        b"170|1.3|support|Ann|ATTENDEDTRANSFER|BRIDGE|abc-123|4|62|1",
        b"171|NONE|NONE|Ann|PAUSEALL|Meeting", b"172|NONE|NONE|Ann|UNPAUSEALL|",
        b"173|NONE|NONE|Ann|AGENTLOGOFF|Local/100|73", b"174|NONE|sales|NONE|SOMETHINGNEW|a",
        b"175|NONE|nowhere|Ann|PAUSE|x"], {"sales": "sales", "support": "help"})
    states = [(e["ts"], e["state"], e.get("reason"), tuple(e["queues"])) for e in events
              if e["type"] == "agent.state"]
    assert states == [
        (100.0, "available", None, ("sales",)), (101.0, "available", None, ("help", "sales")),
        (108.0, "busy", None, ("help", "sales")),
        (170.0, "available", None, ("help", "sales")),
        (171.0, "away", "Meeting", ("help", "sales")),
        (172.0, "available", None, ("help", "sales")), (173.0, "offline", None, ()),
        (175.0, "away", "x", ("nowhere",))]
    exits = {e["contact_id"]: e for e in events if e["type"] == "contact.transferred"}
    assert "wait_s" not in exits["1.1"] and exits["1.2"]["wait_s"] == 7.0
    ended = next(e for e in events if e["type"] == "contact.ended")
    assert ended["talk_s"] == 62.0 and ended["queue"] == "help" and ended["agent"] == "Ann"
    assert mapper.ignored["SOMETHINGNEW"] == 1
    assert "Ann" in mapper.agents  # told away in "nowhere" after the log-off


@pytest.mark.parametrize("raw, why", [
    (b"", "fields"), (b"abc|1|q|a|ENTERQUEUE", "epoch"), (b"1|2|3", "fields"),
    (b"99999999999|1|q|a|X", "range"), (b"\xff\xfe|1|q|a|X", "UTF-8"),
    (b"1|1|q|a|" + b"x" * 5000, "longer"), (b"100|1|q|a| |", "event"),
    (b"100|1|" + b"q" * 300 + b"|a|PAUSE", "longer than 256")])
def test_a_line_not_of_queue_logs_shape_is_refused_with_the_reason(raw: bytes, why: str
                                                                  ) -> None:
    with pytest.raises(BadLine, match=why):
        parse_line(raw)


_FIELD = st.one_of(st.sampled_from(["", "NONE", "sales", "Alice", "1796630455.11", "12",
                                     "-3", "1e9", "nan", "Lunch", "x|y"]),
                   st.text(max_size=12))
_EVENT = st.one_of(st.sampled_from(["ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER",
                                    "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY",
                                    "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER", "PAUSE",
                                    "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "ADDMEMBER",
                                    "REMOVEMEMBER", "AGENTLOGIN", "AGENTLOGOFF",
                                    "RINGNOANSWER"]), st.text(max_size=6))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(st.one_of(st.integers(1_796_630_000, 1_796_640_000).map(str),
                                          _FIELD),
                                _FIELD, _FIELD, _FIELD, _EVENT,
                                st.lists(_FIELD, max_size=6)), max_size=30))
def test_near_valid_lines_give_valid_events_or_a_bad_line_never_a_crash(lines: list) -> None:
    """Whatever the lines, parsing raises BadLine or gives a Line; mapping never raises; every
    event it gives passes the core's checks or is refused by them with an EventError."""
    mapper = Mapper(lambda q: q)
    for ts, callid, queue, agent, name, data in lines:
        raw = "|".join([ts, callid, queue, agent, name, *data]).encode()
        try:
            line = parse_line(raw)
        except BadLine:
            continue
        for event in mapper.handle(line):
            try:
                parse_event(event, "pbx")  # no clock: a PBX clock ahead is not the point
            except EventError as exc:
                # Only a name's text may be refused (counted by the core; the source goes on):
                # never a number, a time or the event's shape.
                assert exc.field.split(".")[0].split("[")[0] in {
                    "id", "queue", "contact_id", "agent", "reason", "queues"}, exc
            assert set(event) <= {"type", "id", "ts", "queue", "contact_id", "agent", "state",
                                  "queues", "reason", "wait_s", "talk_s"}


def write(path: Path, *lines: str, mode: str = "a") -> None:
    with path.open(mode) as f:
        f.write("".join(line + "\n" for line in lines))


def test_follows_a_rename_and_reads_what_the_writer_added_to_the_old_file(tmp_path: Path
                                                                          ) -> None:
    log = tmp_path / "queue_log"
    write(log, "1", "2")
    follower = Follower(log, grace_s=5.0)
    assert follower.read(now=0) == [b"1", b"2"]
    with log.open("a") as old:  # the writer's handle, kept across the rename
        write(log, "3")
        os.rename(log, tmp_path / "queue_log.1")
        old.write("4\n")
        old.flush()
        assert follower.read(now=1) == []  # renamed, no new file yet: nothing lost, no error
        write(log, "5")  # the writer reopened the log (logger reload)
        assert follower.read(now=2) == [b"3", b"4", b"5"]
        old.write("6\n")  # a line that raced the reopen, in the grace
        old.flush()
        assert follower.read(now=3) == [b"6"]
    write(log, "7-partial", mode="a")
    with log.open("r+b") as f:  # an unfinished last line waits for its newline
        f.seek(-1, os.SEEK_END)
        f.truncate()
    assert follower.read(now=9) == []
    write(log, "")
    assert follower.read(now=10) == [b"7-partial"] and follower.rotations == 1
    assert follower.renamed == []  # the grace passed and it had nothing more


def test_follows_copytruncate_and_takes_the_lines_only_the_copy_has(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    write(log, *[f"line {i} " + "x" * 60 for i in range(30)])  # past the fingerprint's 1 KB
    follower = Follower(log)
    assert len(follower.read()) == 30
    write(log, "after our read, before the copy")
    shutil.copyfile(log, tmp_path / "queue_log.1")
    with log.open("r+") as f:
        f.truncate(0)
    # Longer than where we were: only the fingerprint of its first bytes tells it is new.
    write(log, "into the truncated file " + "y" * 2000)
    assert follower.read() == [b"after our read, before the copy",
                               b"into the truncated file " + b"y" * 2000]
    write(log, "next")
    assert follower.read() == [b"next"] and follower.rotations == 1


def test_a_file_growing_past_the_fingerprint_is_read_once(tmp_path: Path) -> None:
    """The fingerprint covers the file's first kilobyte as it grows: no false truncation."""
    log = tmp_path / "queue_log"
    log.touch()
    follower = Follower(log)
    seen: list[bytes] = []
    for i in range(12):  # 12 x 200 bytes: the offset crosses 1 KB between two reads
        write(log, f"{i:02d}" + "x" * 197)
        seen += follower.read()
    assert seen == [f"{i:02d}".encode() + b"x" * 197 for i in range(12)]
    assert follower.rotations == 0


@pytest.mark.parametrize("rotation", ["none", "rename", "copytruncate"])
def test_a_restart_resumes_from_the_saved_position_whatever_happened_meanwhile(
        tmp_path: Path, rotation: str) -> None:
    log = tmp_path / "queue_log"
    write(log, "a", "b")
    first = Follower(log)
    assert first.read() == [b"a", b"b"]
    saved = first.position.to_json() if first.position else None
    write(log, "c")  # written while we were down
    if rotation == "rename":
        os.rename(log, tmp_path / "queue_log-20261207")
        write(log, "d")
    elif rotation == "copytruncate":
        shutil.copyfile(log, tmp_path / "queue_log.1")
        with log.open("r+") as f:
            f.truncate(0)
        write(log, "d")
    else:
        write(log, "d")
    again = Follower(log, Position.from_json(saved))
    assert again.read() == [b"c", b"d"]


def test_a_saved_position_that_is_not_one_reads_as_none() -> None:
    assert Position.from_json({"inode": "1", "offset": 0, "head": ""}) is None
    assert Position.from_json({"inode": 1, "offset": -1, "head": ""}) is None
    assert Position.from_json([1, 2]) is None
    assert Position.from_json({"inode": 1, "offset": 5, "head": "ab"}) == Position(1, 5, "ab")


async def test_a_first_start_reads_from_midnight_and_tells_the_agents_known_before(
        tmp_path: Path) -> None:
    """Yesterday's lines tell who is in which queue (announced at midnight), never a contact;
    today's lines are emitted; the position saved lets a restart read on, not again."""
    log = tmp_path / "queue_log"
    midnight = 1796601600  # 2026-12-07 00:00 UTC
    write(log, f"{midnight - 3600}|NONE|sales|Alice|ADDMEMBER|",
          f"{midnight - 3000}|NONE|sales|Bob|ADDMEMBER|",
          f"{midnight - 2000}|NONE|sales|Bob|PAUSE|Lunch",
          f"{midnight - 1000}|9.1|sales|NONE|ENTERQUEUE||x|1",
          f"{midnight - 990}|9.1|sales|NONE|ABANDON|1|1|10",
          f"{midnight + 3600}|9.2|sales|NONE|ENTERQUEUE||y|1",
          f"{midnight + 3610}|9.2|sales|Alice|CONNECT|10|9.3|1")
    config = {"type": "asterisk_queue_log", "path": str(log), "state_dir": str(tmp_path),
              "timezone": "UTC", "poll_interval_s": 0.1}

    def source() -> AsteriskQueueLogSource:
        return AsteriskQueueLogSource("pbx", AsteriskQueueLogSource.Config.model_validate(
            config))  # type: ignore[arg-type]  # reason: Config is the queue_log config
    clock = VirtualClock(midnight + 12 * 3600)
    async with SourceHarness(source(), clock=clock) as h:
        await h.wait_for(lambda: len(h.events) >= 5, "emit today's events")
        await h.settle(0.3)  # and the position is saved a turn later
    assert not h.invalid
    told = [(e["type"], e["ts"], e.get("contact_id") or e.get("agent"), e.get("state"),
             e.get("reason")) for e in h.events]
    assert told == [
        ("agent.state", midnight, "Alice", "available", None),
        ("agent.state", midnight, "Bob", "away", "Lunch"),
        ("contact.queued", midnight + 3600, "9.2", None, None),
        ("contact.answered", midnight + 3610, "9.2", None, None),
        ("agent.state", midnight + 3610, "Alice", "busy", None)]
    write(log, f"{midnight + 3700}|9.2|sales|Alice|COMPLETEAGENT|10|90|1")
    async with SourceHarness(source(), clock=clock) as again:
        await again.wait_for(lambda: len(again.events) >= 2, "read on")
        await again.settle(0.2)
    assert [e["type"] for e in again.events] == ["contact.ended", "agent.state"]


_STATE = tempfile.mkdtemp(prefix="wallboard-queue-log-contract-")


class TestAsteriskQueueLogContract(SourceContract):
    """A file, not a peer: the checks of a connection do not apply; bad lines are above."""

    source_class = AsteriskQueueLogSource
    config: ClassVar[dict] = {"path": str(SAMPLE), "state_dir": _STATE,
                              "first_start": "beginning", "poll_interval_s": 0.05}
    bad_configs: ClassVar[list] = [
        ({"path": ""}, "path: String should have at least 1 character"),
        ({"state_dir": None}, "state_dir: Field required"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"first_start": "yesterday"}, "first_start: Input should be"),
        ({"poll_interval_s": 0}, "poll_interval_s: Input should be greater than 0"),
        ({"id_scope": "pbx log"}, "id_scope: String should match pattern"),
    ]
    not_applicable: ClassVar[dict] = {
        PEER_DROP: "asterisk_queue_log reads a file: there is no peer to lose (a missing "
                   "file is a SourceError, tested with the server)",
        MALFORMED: "lines not of queue_log's shape are counted and skipped (the tests above)",
    }
    min_events = 10

    def make_config(self, peer: object) -> dict:
        """Each check reads the sample from its start: a fresh place for the position."""
        config = super().make_config(None)
        config["state_dir"] = tempfile.mkdtemp(prefix="wallboard-queue-log-", dir=_STATE)
        return config
