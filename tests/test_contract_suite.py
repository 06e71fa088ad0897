"""The contract suite fails a broken plugin with a message naming each of its problems."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def broken_run() -> tuple[str, dict[str, str]]:
    """pytest on tests/plugins/broken_contract.py in a subprocess: its output and outcomes."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
         "tests/plugins/broken_contract.py"], cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 1, result.stdout[-3000:]  # 1: some tests failed
    outcomes = dict(re.findall(r"::(Test\w+::test_\w+) (PASSED|FAILED|SKIPPED)", result.stdout))
    return result.stdout, outcomes


def failure(output: str, test: str) -> str:
    """The failure section of one test."""
    head = f"_ {test.replace('::', '.')} _"
    assert head in output, f"no failure section for {test}"
    section = output.split(head, 1)[1]
    return re.split(r"\n_{3,} |\n={3,} ", section, maxsplit=1)[0]


def test_blocking_the_loop_is_named_with_the_line_that_blocks(broken_run) -> None:
    output, outcomes = broken_run
    test = "TestBrokenSourceContract::test_never_blocks_the_event_loop"
    assert outcomes[test] == "FAILED"
    text = failure(output, test)
    assert "BrokenSource (broken): blocks the event loop: task source:contract" in text
    held = re.search(r"ran (\d+) ms without yielding \(limit 50 ms", text)
    assert held and int(held[1]) >= 115  # the 120 ms sleep, give or take timer resolution
    assert "broken_sources.py:" in text and "in run: time.sleep(0.12)" in text


def test_an_invalid_event_is_named_with_its_field_and_the_event(broken_run) -> None:
    output, outcomes = broken_run
    test = "TestBrokenSourceContract::test_every_emitted_event_is_valid"
    assert outcomes[test] == "FAILED"
    text = failure(output, test)
    assert re.search(r"BrokenSource \(broken\): emitted (\d+) invalid event\(s\) of \1", text)
    assert "contact_id: is required for contact.queued: {'type': 'contact.queued'" in text


def test_ignoring_cancellation_is_named(broken_run) -> None:
    output, outcomes = broken_run
    test = "TestBrokenSourceContract::test_stops_cleanly_and_quickly_when_cancelled"
    assert outcomes[test] == "FAILED"
    assert ("BrokenSource (broken): ignores cancellation: still running 0.5s after its task "
            "was cancelled") in failure(output, test)


def test_hiding_an_outage_and_crashing_on_bad_bytes_are_named(broken_run) -> None:
    output, outcomes = broken_run
    drop = "TestFragileSourceContract::test_reports_status_when_its_peer_drops_and_returns"
    assert outcomes[drop] == "FAILED"
    assert ("FragileSource (fragile): did not go down when its peer dropped within 2s "
            "(statuses: starting → up;") in failure(output, drop)
    bad = "TestFragileSourceContract::test_survives_malformed_payloads_from_its_peer"
    assert outcomes[bad] == "FAILED"
    assert ("crashed on the malformed payload b'null': TypeError: 'NoneType' object is not "
            "subscriptable; raise SourceError") in failure(output, bad)


def test_checks_a_broken_plugin_does_not_break_still_pass(broken_run) -> None:
    _, outcomes = broken_run
    assert outcomes["TestBrokenSourceContract::test_config_model_accepts_the_declared_config"] \
        == "PASSED"
    assert outcomes["TestFragileSourceContract::test_every_emitted_event_is_valid"] == "PASSED"
    assert outcomes["TestFragileSourceContract::test_stops_cleanly_and_quickly_when_cancelled"] \
        == "PASSED"
    assert outcomes["TestBrokenSourceContract::test_reports_status_when_its_peer_drops_and_returns"
                    ] == "SKIPPED"
    assert sorted(outcomes.values()).count("FAILED") == 5
