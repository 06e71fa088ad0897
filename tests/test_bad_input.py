"""Bad input gets a clear error naming the place, is counted, and nothing else is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import base_config, now
from tests.metrics_text import rejected_by_reason


async def test_malformed_events_are_listed_with_field_path_and_counted_beside_a_stored_one(
        live_server) -> None:
    live = await live_server(base_config())
    good = {"type": "contact.queued", "id": "g1", "ts": now(), "queue": "sales",
            "contact_id": "c1"}
    bad_state = {"type": "agent.state", "id": "b1", "ts": now(), "agent": "a1",
                 "state": "sleeping"}
    bad_ts = {"type": "contact.queued", "id": "b2", "ts": "yesterday", "queue": "sales",
              "contact_id": "c2"}
    no_queue = {"type": "contact.answered", "id": "b3", "ts": now(), "contact_id": "c3"}
    status, body = await live.post([good, bad_state, bad_ts, no_queue])
    assert status == 202  # partial: the good one is stored, a retry would not help the rest
    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "state"), (2, "ts"), (3, "queue")]
    assert "sleeping" not in body["rejected"][0]["error"]
    assert "available" in body["rejected"][0]["error"]
    _, text = await live.get_text("/metrics")
    counts = rejected_by_reason(text)
    assert counts["bad_value"] == 2 and counts["missing_field"] == 1
    # The good event in the same batch was kept and the server keeps serving.
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["live"]["waiting"] == 1
    assert (await live.get_json("/healthz"))["status"] == "ok"


async def test_queues_and_teams_beyond_their_limits_are_refused_and_counted(live_server) -> None:
    """Queues and teams are labels in /metrics: new ones past server.max_* are refused."""
    config = base_config(server={"push_interval_ms": 50, "max_queues": 3, "max_teams": 2})
    live = await live_server(config)  # sales and chat configured: one queue left

    def agent(n: int, team: str) -> dict[str, object]:
        return {"type": "agent.state", "id": f"a{n}", "ts": now(), "agent": f"agent{n}",
                "team": team, "state": "available", "queues": ["sales"]}

    status, body = await live.post([agent(1, "blue"), agent(2, "green"), agent(5, "green")])
    assert (status, body["accepted"]) == (202, 3)  # two new teams in one batch: both fit
    new_queue = {"type": "contact.queued", "id": "q1", "ts": now(), "queue": "extra",
                 "contact_id": "c1"}
    over_queue = {**new_queue, "id": "q2", "queue": "one-too-many", "contact_id": "c2"}
    # One batch: the third queue takes the last place, so the fourth is refused at once (not
    # acknowledged and dropped later), and so is a third team.
    status, body = await live.post([new_queue, over_queue, agent(3, "red"), agent(4, "blue")])
    assert status == 202 and body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "queue"), (2, "team")]
    assert "server.max_queues" in body["rejected"][0]["error"]
    assert "server.max_teams" in body["rejected"][1]["error"]
    _, text = await live.get_text("/metrics")
    counts = rejected_by_reason(text)
    assert counts["queue_limit"] == 1 and counts["team_limit"] == 1
    api = await live.get_json("/api/snapshot")
    assert set(api["teams"]) == {"blue", "green"} and api["teams"]["blue"]["live"][
        "agents_available"] == 2  # agent4 joined an existing team
    assert "one-too-many" not in api["queues"] and api["queues"]["extra"]["live"]["waiting"] == 1


def test_several_new_teams_in_one_batch_keep_the_agent_and_refuse_the_team() -> None:
    """Admission checks each event before any is stored; the fold enforces the limit too."""
    from tests.engine import T0, Engine

    engine = Engine({"server": {"max_teams": 1}, "queues": {"sales": {}}}, T0)
    for n, team in enumerate(("blue", "red")):
        engine.pipeline.fold(engine.pipeline.parse(
            {"type": "agent.state", "id": f"a{n}", "ts": T0, "agent": f"agent{n}",
             "team": team, "state": "available", "queues": ["sales"]}, "test"))
    snap = engine.snapshot(T0 + 1)
    assert set(snap["teams"]) == {"blue"}
    assert snap["agents"]["agent1"]["state"] == "available"  # the agent still counts
    assert engine.pipeline.rejected["team_limit"] == 1


async def test_body_that_is_not_json_is_refused_and_counted(live_server) -> None:
    live = await live_server(base_config())
    status, body = await live.post(None, raw=b'{"type": "contact.queued",\n{oops')
    assert status == 400 and "line 1" in body["error"]
    _, text = await live.get_text("/metrics")
    assert rejected_by_reason(text)["malformed"] == 1


async def test_ndjson_lines_are_reported_by_line_number(live_server) -> None:
    live = await live_server(base_config())
    t = now()
    lines = (f'{{"type":"contact.queued","id":"n1","ts":{t},"queue":"sales","contact_id":"a"}}\n'
             f'{{"type":"contact.queued","id":"n2","ts":{t},"queue":"sales"}}\n')
    status, body = await live.post(None, raw=lines.encode(), content_type="application/x-ndjson")
    assert status == 202
    assert body["accepted"] == 1
    assert body["rejected"] == [{"line": 2, "field": "contact_id", "reason": "missing_field",
                                 "error": "is required for contact.queued"}]


async def test_wrong_token_is_401_and_counted(live_server) -> None:
    live = await live_server(base_config())
    status, body = await live.post({"type": "contact.queued"}, token="wrong-token-xyz")
    assert status == 401 and "token" in body["error"]
    _, text = await live.get_text("/metrics")
    assert rejected_by_reason(text)["unauthorized"] == 1


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the wallboard CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "wallboard", *args], capture_output=True,
                          text=True, timeout=60)


def test_check_config_names_file_and_key_path(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("site: {timezone: Mars/Olympus}\n"
                      "queues:\n  sales: {service_level: {threshold_s: -3}}\n"
                      "server: {port: 99999}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    err = result.stderr
    assert f"{config}: site.timezone: unknown time zone 'Mars/Olympus'" in err
    assert f"{config}: queues.sales.service_level.threshold_s:" in err
    assert f"{config}: server.port:" in err


def test_check_config_reports_unknown_source_type_with_known_ones(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("sources:\n  pbx: {type: asterisk_nope}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert "sources.pbx.type: unknown source type 'asterisk_nope'; known:" in result.stderr
    assert "simulator" in result.stderr and "webhook" in result.stderr


def test_check_config_validates_source_fields_and_env(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("sources:\n  hook: {type: webhook, token: '${WB_TEST_UNSET_TOKEN}'}\n"
                      "  hook2: {type: webhook, token: abc, colour: red}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert "sources.hook.token: environment variable WB_TEST_UNSET_TOKEN is not set" in \
        result.stderr


def test_check_config_reports_source_model_errors(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("sources:\n  hook2: {type: webhook, token: abc, colour: red}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert "sources.hook2.token: String should have at least 8 characters" in result.stderr
    assert "sources.hook2.colour: Extra inputs are not permitted" in result.stderr


def test_check_config_rejects_invalid_yaml_and_tiles(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("queues: [\n")
    result = run_cli("check-config", str(broken))
    assert result.returncode == 2 and "invalid YAML at line" in result.stderr
    tiles = tmp_path / "tiles.yaml"
    tiles.write_text("queues: {sales: {}}\nboards:\n  main:\n    tiles:\n"
                     "      - {kpi: waiting, queue: sales}\n      - {kpi: happiness}\n"
                     "      - {kpi: waiting, queue: nope}\n")
    result = run_cli("check-config", str(tiles))
    assert result.returncode == 2
    assert "boards.main.tiles[1]: unknown kpi 'happiness'" in result.stderr


def test_check_config_accepts_a_valid_file_and_substitutes_env(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("sources:\n  hook: {type: webhook, token: '${WB_TEST_TOKEN}'}\n")
    env_result = subprocess.run(
        [sys.executable, "-m", "wallboard", "check-config", str(config)], capture_output=True,
        text=True, timeout=60, env={**os.environ, "WB_TEST_TOKEN": "s3cret-token"})
    assert env_result.returncode == 0, env_result.stderr
    assert "OK" in env_result.stdout


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "wallboard", "check-config", str(example)], capture_output=True,
        text=True, timeout=60, env={**os.environ, "WALLBOARD_WEBHOOK_TOKEN": "example-token"})
    assert result.returncode == 0, result.stderr


def test_a_reservation_never_folded_lapses_and_frees_its_place() -> None:
    """A new queue admitted but never counted (here: late) holds its place only for a while."""
    from tests.engine import T0, Engine
    from wallboard.model.events import EventError

    engine = Engine({"server": {"max_queues": 2}, "site": {"lateness_s": 60},
                     "queues": {"sales": {}}}, T0)
    pipeline = engine.pipeline

    def queued(n: int, queue: str, ts: float) -> Any:
        return pipeline.parse({"type": "contact.queued", "id": f"q{n}", "ts": ts,
                               "queue": queue, "contact_id": f"c{n}"}, "test")

    ghost = queued(1, "ghost", T0 - 3600)
    pipeline.admit(ghost)
    assert pipeline.fold(ghost) == "late"  # never creates the queue
    with pytest.raises(EventError, match=r"server\.max_queues"):
        pipeline.admit(queued(2, "real", T0))  # the ghost still holds the last place
    pipeline.admission.reserve_s = 0.0  # its reservation lapses
    pipeline.admit(queued(3, "real", T0))
    assert pipeline.rejected["queue_limit"] == 1
