"""check-config, serve and a run-time reload name every problem of a file in one run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.serverproc import journal_config
from wallboard.config.boards import TILE_KPIS, TILE_TYPES
from wallboard.config.kpis import KPI_FORMATS
from wallboard.config.settings import ConfigError, load_settings
from wallboard.server.access import Access
from wallboard.server.configwatch import ConfigWatcher
from wallboard.server.plugins import build_registry, make_plugin_manager, source_check

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"queues": {"sales": {}, "support": {}},
        "boards": {"floor": {"tiles": [{"kpi": "waiting"}]}}}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wallboard", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()
            if line.startswith("error: ")]


def three_problems(path: Path) -> None:
    """An unknown queue in a tile, an unknown window, an unknown board in a playlist."""
    path.write_text(
        "queues: {sales: {}, support: {}}\n"
        "boards:\n"
        "  floor:\n"
        "    tiles:\n"
        "      - {kpi: waiting, queue: salse}\n"
        "      - {kpi: offered, window: 2h}\n"
        "playlists:\n"
        "  lobby: {boards: [floor, lobby_board]}\n")


def test_three_independent_problems_are_named_in_one_run(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    three_problems(config)
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert errors(result.stderr) == [
        f"{config}: boards.floor.tiles[0].queue: unknown queue 'salse'; known: sales, support;"
        " did you mean 'sales'?",
        f"{config}: boards.floor.tiles[1].window: '2h' is not a configured window "
        "(15m, 1h, today)",
        f"{config}: playlists.lobby.boards[1]: unknown board 'lobby_board'; known: floor",
    ]


def test_every_stage_is_reported_together_in_the_files_order(tmp_path: Path) -> None:
    """Schema, cross-references, tiles, playlists, access and a source's own settings."""
    config = tmp_path / "site.yaml"
    config.write_text(
        "site: {timezone: Mars/Olympus}\n"
        "queues: {sales: {service_level: {threshold_s: -1}}}\n"
        "sources:\n  hook: {type: webhook, token: abc}\n  pbx: {type: asterisk_nope}\n"
        "boards:\n  floor:\n    tiles:\n"
        "      - {kpi: waiting, cols: 13}\n"  # the tile's schema
        "      - {kpi: waiting, queue: nope}\n"
        "      - {type: ring, kpi: waiting}\n"
        "playlists: {lobby: {boards: [nope]}}\n"
        "access: {boards: {nope: [aaaaaaaaaaaaaaaaaaaa]}}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    paths = [line.removeprefix(f"{config}: ").split(": ")[0] for line in errors(result.stderr)]
    assert paths == ["site.timezone", "queues.sales.service_level.threshold_s",
                     "sources.hook.token", "sources.pbx.type", "boards.floor.tiles[0].cols",
                     "boards.floor.tiles[1].queue", "boards.floor.tiles[2]",
                     "playlists.lobby.boards[0]", "access.boards.nope"]


@pytest.mark.parametrize(("text", "path", "suggested"), [
    ("queus: {sales: {}}\n", "queus", "queues"),
    ("queues: {sales: {service_level: {treshold_s: 30}}}\n",
     "queues.sales.service_level.treshold_s", "threshold_s"),
    ("boards: {floor: {tiles: [{kpi: waiting, tresholds: {warn: 3}}]}}\n",
     "boards.floor.tiles[0].tresholds", "thresholds"),
    ("sources: {hook: {type: webhook, token: abcdefghij, tokn: x}}\n",
     "sources.hook.tokn", "token"),
])
def test_a_misspelt_key_gets_did_you_mean(tmp_path: Path, text: str, path: str,
                                          suggested: str) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(text)
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert (f"{config}: {path}: Extra inputs are not permitted; did you mean {suggested!r}?"
            in errors(result.stderr)), result.stderr


@pytest.mark.parametrize(("tile", "message"), [
    ("{kpi: waitng}", "unknown kpi 'waitng'; known: "),
    ("{type: rnig, kpi: service_level}", "did you mean 'ring'?"),
    ("{kpi: waiting, channel: emial}", "unknown channel 'emial'; known: chat, email, "),
    ("{kpi: waiting, queue: salse}", "unknown queue 'salse'; known: sales; did you mean"),
])
def test_unknown_names_get_did_you_mean(tmp_path: Path, tile: str, message: str) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(f"queues: {{sales: {{}}}}\nboards: {{floor: {{tiles: [{tile}]}}}}\n"
                      "sources: {sim: {type: simulatr}}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    err = errors(result.stderr)
    assert any(line.startswith(f"{config}: boards.floor.tiles[0]") and message in line
               for line in err), err
    assert f"{config}: sources.sim.type: unknown source type 'simulatr'" in result.stderr
    assert "did you mean 'simulator'?" in result.stderr
    if "kpi: waitng" in tile:
        assert err[0].endswith("did you mean 'waiting'?")


def test_a_ring_refuses_a_kpi_that_is_not_a_ratio(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("boards:\n  floor:\n    tiles:\n      - {type: ring}\n"
                      "      - {type: ring, kpi: waiting}\n      - {type: agents, kpi: asa_s}\n"
                      "      - {type: clock, kpi: waiting}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    err = errors(result.stderr)
    assert len(err) == 3, err
    assert err[0].startswith(f"{config}: boards.floor.tiles[1]: a ring tile shows ")
    assert err[0].endswith(", not kpi 'waiting'") and "service_level" in err[0]
    assert err[1] == (f"{config}: boards.floor.tiles[2]: an agents tile shows agents_staffed, "
                      "not kpi 'asa_s'")
    assert err[2] == (f"{config}: boards.floor.tiles[3]: a clock tile shows no kpi; remove "
                      "kpi 'waiting'")


def test_the_tile_kpi_table_is_the_one_in_the_docs() -> None:
    section = (ROOT / "docs" / "boards.md").read_text().split("### KPIs by tile type")[1]
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", section.split("\n## ")[0], re.M))
    del rows["type"]  # the header
    assert sorted(rows) == sorted(TILE_TYPES)
    for tile_type, fits in TILE_KPIS.items():
        listed = re.findall(r"`(\w+)`", rows[tile_type])
        if fits is None:
            assert rows[tile_type].startswith("any"), tile_type
        else:
            assert listed == list(fits) or (not fits and rows[tile_type] == "none"), tile_type
    ratios = sorted(k for k, f in KPI_FORMATS.items() if f == "ratio")
    assert TILE_KPIS["ring"] == tuple(ratios)


def test_serve_and_a_reload_name_the_same_problems_as_check_config(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    three_problems(config)
    checked = errors(run_cli("check-config", str(config)).stderr)
    served = run_cli("serve", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert served.returncode == 2 and "serving" not in served.stdout + served.stderr
    assert errors(served.stderr) == checked
    with pytest.raises(ConfigError) as loaded:
        load_settings(config, source_check(build_registry(make_plugin_manager())))
    assert loaded.value.problems == checked

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    settings = load_settings(good)
    access = Access(settings.access, good, settings.boards, settings.playlists)
    watcher = ConfigWatcher(good, settings, access,
                            source_check=source_check(build_registry(make_plugin_manager())))
    good.write_text(config.read_text().replace("\n", "\n\n"))  # a new size: a change
    os.utime(good, (time.time() + 1, time.time() + 1))
    assert asyncio.run(watcher.refresh()) is False
    assert watcher.ok is False
    assert watcher.error == "\n".join(line.replace(str(config), str(good)) for line in checked)


def test_a_journal_that_cannot_open_says_nothing_of_serving(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("")  # a file where the directory should be
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(journal_config(data)))
    result = run_cli("serve", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    err = errors(result.stderr)
    assert len(err) == 1 and err[0].startswith(f"journal: {data}: not a directory"), err
    assert "serving" not in result.stdout + result.stderr, result.stdout
    assert "Traceback" not in result.stderr


def test_serving_is_said_once_the_port_is_open_with_the_port_listened_on(
        tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(journal_config(tmp_path / "data")))
    server = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--config",
                               str(config), "--port", "0"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.fullmatch(rf"wallboard \S+: serving {re.escape(str(config))} on "
                             r"http://127\.0\.0\.1:(\d+)/\n", line)
        assert match, line
        port = int(match.group(1))
        assert port != 0
        # Said after the port opened: the first request already finds it.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
