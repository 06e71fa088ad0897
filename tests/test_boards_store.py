"""The boards store (boards.d): atomic versioned files, validation as check-config, and
check-config on a boards.d directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import base_config
from wallboard.config.settings import parse_settings
from wallboard.config.store import BoardStore, StoreError, board_from, board_problems

SETTINGS = parse_settings(base_config(), "<test>")


def _board(columns: int = 2) -> dict[str, object]:
    return {"title": "Floor", "columns": columns,
            "tiles": [{"kpi": "waiting", "queue": "sales"}, {"kpi": "answered"}]}


def test_writes_keep_the_last_versions_and_leave_no_temporary_file(tmp_path: Path) -> None:
    store = BoardStore(tmp_path / "boards.d", keep=3, clock=lambda: 0.0)
    for version in range(1, 6):
        store.write("floor", board_from(_board(version), SETTINGS), version, "editor:sam")
    assert [v["version"] for v in store.versions("floor")] == [5, 4, 3]
    assert store.read("floor", SETTINGS).board.columns == 5
    assert store.version("floor", 3, SETTINGS).board.columns == 3
    with pytest.raises(StoreError) as gone:
        store.version("floor", 1, SETTINGS)
    assert gone.value.status == 404
    leftovers = [p.name for p in (tmp_path / "boards.d").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    text = store.path("floor").read_text()
    assert text.startswith("# A wallboard board") and "saved_at: '1970-01-01T00:00:00Z'" in text
    # The site's default window is written out: the file says what the TV shows.
    assert yaml.safe_load(text)["board"]["tiles"][1] == {"kpi": "answered", "window": "today"}


def test_problems_carry_the_key_paths_and_messages_of_check_config() -> None:
    problems = dict(board_problems({"columns": 0, "tiles": [
        {"kpi": "waitng"}, {"kpi": "answered", "window": "3h"}, {"type": "legal",
                                                                 "queue": "sales"}]}, SETTINGS))
    assert problems["columns"] == "Input should be greater than or equal to 1"
    assert "unknown kpi 'waitng'" in problems["tiles[0]"]
    assert "did you mean 'waiting'?" in problems["tiles[0]"]
    assert problems["tiles[1].window"].startswith("'3h' is not a configured window")
    assert problems["tiles[2].queue"] == "queue 'sales' has no legal_rules"
    assert board_problems(_board(), SETTINGS) == []


def test_names_and_sizes_are_bounded(tmp_path: Path) -> None:
    store = BoardStore(tmp_path / "boards.d")
    for name in ("../etc", "A", "", "x" * 49, "a/b", ".history"):
        with pytest.raises(StoreError) as refused:
            store.read(name)
        assert refused.value.status == 400, name
    too_many = {"tiles": [{"kpi": "waiting"}] * 101}
    assert any(p == "tiles" for p, _ in board_problems(too_many, SETTINGS))
    long_title = {**_board(), "title": "x" * 201}
    assert [p for p, _ in board_problems(long_title, SETTINGS)] == ["title"]


def _check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wallboard", "check-config", str(config),
                           *extra], capture_output=True, text=True, timeout=60,
                          cwd=config.parent)


def test_check_config_validates_the_boards_d_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "wallboard.yaml"
    config.write_text(yaml.safe_dump(base_config(journal={"data_dir": str(data)})))
    store = BoardStore(data / "boards.d")
    store.write("floor", board_from(_board(), SETTINGS), 1, "admin")
    ok = _check(config)
    assert ok.returncode == 0, ok.stderr
    assert f"1 in {data / 'boards.d'}" in ok.stdout
    # A hand edit that breaks it: named with the file and the key path.
    bad = yaml.safe_load(store.path("floor").read_text())
    bad["board"]["tiles"][1]["window"] = "2h"
    store.path("floor").write_text(yaml.safe_dump(bad))
    (data / "boards.d" / "Bad Name.yaml").write_text(store.path("floor").read_text())
    failed = _check(config)
    assert failed.returncode == 2
    lines = failed.stderr.splitlines()
    assert (f"error: {store.path('floor')}: board.tiles[1].window: '2h' is not a configured "
            "window (15m, 1h, today)") in lines
    assert any("Bad Name.yaml: the file name is not a board name" in line for line in lines)
    missing = _check(config, "--boards", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def test_check_config_validates_the_stores_playlists(tmp_path: Path) -> None:
    from wallboard.config.store_playlists import PlaylistStore, playlist_from

    data = tmp_path / "data"
    config = tmp_path / "wallboard.yaml"
    config.write_text(yaml.safe_dump(base_config(journal={"data_dir": str(data)})))
    BoardStore(data / "boards.d").write("floor", board_from(_board(), SETTINGS), 1, "admin")
    lists = PlaylistStore(data / "boards.d" / "playlists")
    # Access is off and the config has no boards: its default board, overview, may be shown.
    lists.write("lobby", playlist_from({"boards": ["floor", "overview"]}, ["floor", "overview"]),
                1, "admin")
    ok = _check(config)
    assert ok.returncode == 0, ok.stderr
    assert f"2 in {data / 'boards.d'}" in ok.stdout
    bad = yaml.safe_load(lists.path("lobby").read_text())
    bad["playlist"]["boards"].append("flor")
    lists.path("lobby").write_text(yaml.safe_dump(bad))
    failed = _check(config)
    assert failed.returncode == 2
    assert (f"error: {lists.path('lobby')}: playlist.boards[2]: unknown board 'flor'; known: "
            "floor, overview; did you mean 'floor'?") in failed.stderr.splitlines()
