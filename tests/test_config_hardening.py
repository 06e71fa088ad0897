"""A config file or a command line can be wrong in many ways: each is a clear error, exit 2.

And an edit of the file while the server runs never takes it down nor passes for a success.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from tests.conftest import free_port
from tests.serverproc import ServerProcess, journal_config
from tests.wsclient import BoardClient
from wallboard.config.file import MAX_CONFIG_BYTES, MAX_CONFIG_VALUES
from wallboard.config.settings import ConfigError, load_settings
from wallboard.server.access import Access
from wallboard.server.app import create_app
from wallboard.server.configwatch import ConfigWatcher

VALID = "site:\n  name: Test site\nqueues:\n  sales: {channel: voice}\n"


def alias_bomb(levels: int = 9) -> str:
    """'Billion laughs': 9 aliases of 9 aliases of ... a few hundred bytes, 9^9 strings."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return VALID + "\n".join(lines) + f"\nsources: {{x: {{type: webhook, blob: *l{levels - 1}}}}}\n"


def wallboard(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the command line; its exit code and output."""
    return subprocess.run([sys.executable, "-m", "wallboard", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def commands(path: Path, port: int) -> dict[str, list[str]]:
    """Every command that reads a config file with --config (or as its argument)."""
    events = path.parent / "events.ndjson"
    events.write_text("")
    return {"check-config": ["check-config", str(path)],
            "serve": ["serve", "--config", str(path), "--port", str(port)],
            "replay": ["replay", str(events), "--config", str(path)],
            "journal stats": ["journal", "stats", "--config", str(path)]}


def assert_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.mark.parametrize("command", ["check-config", "serve", "replay", "journal stats"])
def test_a_file_that_is_not_utf8_is_an_error_naming_file_and_byte(tmp_path: Path,
                                                                 command: str) -> None:
    path = tmp_path / "latin1.yaml"
    data = b"site:\n  name: Caf\xe9 central\n"  # saved as Latin-1
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    column = offset - data.index(b"\n")  # 1-based, counted from the first byte of line 2
    assert (offset, column) == (17, 12)
    result = wallboard(*commands(path, free_port())[command], cwd=tmp_path)
    assert_clear_error(result, f"error: {path}: not UTF-8: byte 0xE9 at offset {offset} "
                               f"(line 2, column {column})")


@pytest.mark.parametrize("command", ["check-config", "serve", "replay", "journal stats"])
def test_an_alias_bomb_is_refused_at_once(tmp_path: Path, command: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert len(path.read_bytes()) < 1024
    started = time.monotonic()
    result = wallboard(*commands(path, free_port())[command], cwd=tmp_path, timeout=30)
    took = time.monotonic() - started
    print(f"{command}: alias bomb refused in {took:.2f} s (a whole process)")
    assert_clear_error(result, f"error: {path}: l", f"more than {MAX_CONFIG_VALUES:,} values "
                                                     "once YAML aliases")
    assert took < 10  # a whole interpreter start; the load itself is measured below


def test_the_alias_bomb_costs_milliseconds_and_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="once YAML aliases"):
            load_settings(path)
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"alias bomb (9^9 = {9 ** 9:,} strings once expanded): refused in {took * 1000:.1f} "
          f"ms, peak {peak / 2 ** 20:.1f} MiB")
    assert took < 2 and peak < 50 * 2 ** 20


@pytest.mark.parametrize(("text", "needle"), [
    ("a: &a [1, *a]\nsite: {name: x}\n", "a[1] (line 1): an alias refers to a node that "
                                         "contains it (recursive alias)"),
    ("site:\n  name: " + "[" * 70 + "]" * 70 + "\n", "(line 2): nested more than 64 levels"),
    ("site:\n  name: " + "[" * 3000 + "]" * 3000 + "\n", "nest"),
    ("site: {name: \"a\x00b\"}\n", "invalid YAML at line 1: character U+0000 is not allowed"),
])
def test_recursive_deep_and_binary_yaml_are_clear_errors(tmp_path: Path, text: str,
                                                         needle: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert error.value.problems[0].startswith(f"{path}: ")
    assert needle in error.value.problems[0]


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(VALID + "#" * MAX_CONFIG_BYTES)
    assert_clear_error(wallboard("check-config", str(path), cwd=tmp_path),
                       f"error: {path}: larger than 1,048,576 bytes")
    path.write_text(VALID + "#" * (MAX_CONFIG_BYTES - len(VALID) - 1) + "\n")  # exactly at it
    assert load_settings(path).queues["sales"].channel == "voice"


@pytest.mark.parametrize(("text", "needle"), [
    ("", "the file is empty (or only comments)"),
    ("# the whole configuration\n\n# is commented out\n", "the file is empty (or only comments)"),
    ("- site\n- queues\n", "<top>: must be a mapping of sections such as site:, queues:, "
                           "sources:, not a list"),
    ("just a sentence\n", "<top>: must be a mapping of sections"),
])
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_an_empty_or_shapeless_file_does_not_start_an_empty_server(
        tmp_path: Path, text: str, needle: str, command: str) -> None:
    path = tmp_path / "wallboard.yaml"
    path.write_text(text)
    result = wallboard(*commands(path, free_port())[command], cwd=tmp_path, timeout=30)
    assert_clear_error(result, f"error: {path}: {needle}")


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", "--port", "70000"], "argument --port: 70000 is out of range for server.port "
                                   "(0-65535)"),
    (["serve", "--port", "-1"], "argument --port: -1 is out of range"),
    (["serve", "--port", "http"], "argument --port: 'http' is not a port number"),
    (["serve", "--host", "my host"], "argument --host: 'my host' is not a host name"),
    (["replay", "events.ndjson", "--speed", "1", "--port", "99999"],
     "argument --port: 99999 is out of range"),
])
def test_command_line_overrides_out_of_range_are_usage_errors(tmp_path: Path, args: list[str],
                                                             needle: str) -> None:
    (tmp_path / "events.ndjson").write_text("")
    assert_clear_error(wallboard(*args, cwd=tmp_path, timeout=30), needle)


# -- run-time edits ---------------------------------------------------------------------------

async def healthz(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    async with asyncio.timeout(1), http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
        return await resp.json()


async def metric(http: aiohttp.ClientSession, server: ServerProcess, name: str) -> float:
    async with http.get(f"{server.url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def reload_state(http: aiohttp.ClientSession, server: ServerProcess,
                       ok: bool) -> dict[str, Any]:
    """Wait (up to 5 s: the file is checked every second) until reload_ok is `ok`."""
    for _ in range(100):
        config = (await healthz(http, server))["config"]
        if config["reload_ok"] is ok:
            return config
        await asyncio.sleep(0.05)
    raise AssertionError(f"reload_ok never became {ok}: {config}")


def write(path: Path, data: bytes) -> None:
    """Write like an editor, with an mtime the watcher cannot confuse with the last one."""
    path.write_bytes(data)
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def queued(n: int) -> dict[str, Any]:
    return {"type": "contact.queued", "id": f"c{n}", "ts": time.time(), "queue": "sales",
            "contact_id": f"c{n}"}


BROKEN_EDITS = {
    # A non-access section made invalid, and access switched on in the same edit.
    "invalid value": lambda config: yaml.safe_dump({
        **config, "queues": {**config["queues"], "sales": {"service_level": {"target": 2}}},
        "access": {"enabled": True, "boards": {}}}).encode(),
    "empty file": lambda config: b"",
    "not UTF-8": lambda config: yaml.safe_dump(config).encode() + b"# \xff\n",
    "alias bomb": lambda config: alias_bomb().encode(),
}
ERRORS = {"invalid value": "queues.sales.service_level.target: Input should be less than or "
                           "equal to 1",
          "empty file": "the file is empty",
          "not UTF-8": "not UTF-8: byte 0xFF",
          "alias bomb": "once YAML aliases (*name) are expanded"}


@pytest.mark.parametrize("edit", list(BROKEN_EDITS))
async def test_a_broken_edit_keeps_the_last_good_config_and_says_so(
        server_process, tmp_path: Path, edit: str) -> None:
    config = journal_config(tmp_path / "journal")
    server: ServerProcess = server_process(config)
    await server.start()
    path, good = server.config_path, server.config_path.read_bytes()
    async with aiohttp.ClientSession() as http, \
            BoardClient(f"ws://127.0.0.1:{server.port}/ws?board=overview") as tv:
        start = (await healthz(http, server))["config"]
        assert start == {"reload_ok": True, "error": None, "loaded_at": start["loaded_at"],
                         "file": str(path), "restart_pending": []}
        assert await metric(http, server, "wallboard_config_reload_success") == 1
        assert (await server.post(http, [queued(1)]))[0] == 202
        await tv.wait_for(lambda s: s.get("queues.sales.live.waiting") == 1)

        write(path, BROKEN_EDITS[edit](config))
        broken = await reload_state(http, server, ok=False)
        assert broken["error"].startswith(f"{path}: ") and ERRORS[edit] in broken["error"]
        assert broken["loaded_at"] == start["loaded_at"]  # the last good one
        assert await metric(http, server, "wallboard_config_reload_success") == 0
        assert await metric(
            http, server,
            "wallboard_config_last_reload_success_timestamp_seconds") == start["loaded_at"]
        # Saved again with the same mistake: one ERROR line per mistake, not per save.
        write(path, BROKEN_EDITS[edit](config))
        await asyncio.sleep(2.5)
        assert (await healthz(http, server))["config"]["error"] == broken["error"]
        log = server.log.read_text()
        assert log.count("ERROR") == 1, log
        assert (f"ERROR wallboard.server.configwatch: config {path} not reloaded, the previous "
                "configuration stays in force:\n") in log
        assert "re-read" not in log  # never a success

        # The boards notice nothing: the old config (access off) serves on, numbers move.
        assert (await server.post(http, [queued(2)]))[0] == 202
        await tv.wait_for(lambda s: s.get("queues.sales.live.waiting") == 2)
        assert not any("config" in key or "reload" in key for key in tv.state)
        async with http.get(f"{server.url}/board/overview") as resp:
            assert resp.status == 200  # the broken edit's `access: enabled` is not in force
        # And a start with this file would be refused, as the reload was.
        assert_clear_error(server.cli("journal", "stats"), f"error: {path}: ")

        # Fixed, with a label changed: valid, but queues are read at start only.
        fixed = yaml.safe_load(good)
        fixed["queues"]["sales"]["label"] = "Sales (new)"
        write(path, yaml.safe_dump(fixed).encode())
        again = await reload_state(http, server, ok=True)
        assert again["error"] is None and again["restart_pending"] == ["queues"]
        assert again["loaded_at"] > start["loaded_at"]
        assert await metric(http, server, "wallboard_config_reload_success") == 1
        assert await metric(http, server, "wallboard_config_restart_pending") == 1
        assert await metric(
            http, server,
            "wallboard_config_last_reload_success_timestamp_seconds") == again["loaded_at"]
        assert (f"WARNING wallboard.server.configwatch: config {path} re-read: access unchanged; "
                "queues changed and take effect at the next restart") in server.log.read_text()
        assert "label" not in config["queues"]["sales"]
        assert tv.state["queues.sales.label"] == "sales"  # the old default, until that restart


async def test_a_valid_edit_adding_a_board_applies_its_access_part_and_waits_for_a_restart(
        tmp_path: Path) -> None:
    tv, tv_new, other = "tv-token-board-a-000001", "tv-token-playlist-new-01", "not-a-token-000000"
    data = {**journal_config(tmp_path / "journal"),
            "boards": {"a": {"tiles": [{"kpi": "waiting"}]}},
            "access": {"enabled": True, "boards": {"a": [tv]}}}
    path = tmp_path / "wallboard.yaml"
    path.write_text(yaml.safe_dump(data))
    server = TestServer(create_app(load_settings(path), config_path=str(path)),
                        host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def status(route: str) -> int:
                async with http.get(url + route) as resp:
                    return resp.status

            async def health() -> dict[str, Any]:
                async with http.get(f"{url}/healthz") as resp:
                    return (await resp.json())["config"]

            # Saved again unchanged: re-read, and nothing is said to wait for a restart.
            started = (await health())["loaded_at"]
            write(path, path.read_bytes())
            for _ in range(100):
                if (config := await health())["loaded_at"] != started:
                    break
                await asyncio.sleep(0.05)
            assert config["loaded_at"] > started and config["restart_pending"] == []
            assert config["reload_ok"] is True

            # A new board and a playlist over both, with their tokens; tv loses board a.
            data["boards"]["c"] = {"tiles": [{"kpi": "waiting"}]}
            data["playlists"] = {"new": {"boards": ["a", "c"]}}
            data["access"] = {"enabled": True, "boards": {"a": [other], "c": [tv]},
                              "playlists": {"new": [tv_new]}}
            write(path, yaml.safe_dump(data).encode())
            for _ in range(100):
                if (config := await health())["restart_pending"]:
                    break
                await asyncio.sleep(0.05)
            assert config["reload_ok"] is True
            assert config["restart_pending"] == ["boards", "playlists"]
            assert await status(f"/board/a?token={tv}") == 403  # revoked at once
            assert await status(f"/board/a?token={other}") == 200
            # Not running until the restart: nothing opens them, and nothing fails.
            assert await status(f"/board/c?token={tv}") == 404
            assert await status(f"/play/new?token={tv_new}") == 404
            assert await status(f"/board/a?token={tv_new}") == 403
    finally:
        await server.close()


async def test_a_bug_in_a_validator_is_a_failed_reload_not_the_end_of_the_watch(
        tmp_path: Path) -> None:
    path = tmp_path / "wallboard.yaml"
    text = VALID + "sources: {}\n"  # a sources section: the sources' own check runs
    path.write_text(text)
    settings = load_settings(path)
    calls: list[str] = []

    def check(sources: Any, where: str) -> list[str]:  # a source plugin's own validation
        calls.append(where)
        if len(calls) == 1:
            raise RuntimeError("plugin bug")
        return []

    access = Access(settings.access, path, settings.boards, settings.playlists)
    watcher = ConfigWatcher(path, settings, access, source_check=check)
    assert await watcher.refresh() is False and calls == []  # unchanged: not read
    write(path, text.encode() + b"# saved\n")
    assert await watcher.refresh() is False
    assert (watcher.ok, watcher.error) == (False, f"{path}: unexpected error: "
                                                  "RuntimeError('plugin bug')")
    assert access.reload_errors == 1
    write(path, text.encode())
    await watcher.refresh()  # the next save is read again
    assert (watcher.ok, watcher.error, access.reloads) == (True, None, 1)
    assert calls == [str(path)] * 2
