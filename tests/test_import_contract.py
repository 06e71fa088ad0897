"""The import contract in pyproject.toml holds, and it fails on a deliberate violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the packages found first on the path from `where`."""
    if not LINT.exists():
        pytest.fail(f"{LINT} is missing: install the test extra (import-linter)")
    env = {**os.environ, "PYTHONPATH": str(where)}  # a copy shadows the installed packages
    return subprocess.run([str(LINT), "--no-cache", str(where / "pyproject.toml")], cwd=where,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The repository's packages and contract, copied: `wallboard` and `wallboard_plugins`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "wallboard", tmp_path / "wallboard", ignore=ignore)
    shutil.copytree(ROOT / "plugins", tmp_path / "wallboard_plugins", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_every_contract(copy: Path) -> None:
    result = lint(copy)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


def test_a_plugin_importing_the_server_breaks_the_plugin_contract(copy: Path) -> None:
    (copy / "wallboard_plugins" / "sneaky.py").write_text(
        '"""A plugin that reaches into the core."""\n\nfrom wallboard.server import keys\n')
    result = lint(copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "Plugins import only the kit and the event model BROKEN" in result.stdout
    assert "wallboard_plugins.sneaky -> wallboard.server.keys" in result.stdout
    assert "Layers: data flows one way KEPT" in result.stdout


def test_a_plugin_importing_a_kit_module_breaks_the_plugin_contract(copy: Path) -> None:
    (copy / "wallboard_plugins" / "inner.py").write_text(
        '"""A plugin that bypasses the published names."""\n\n'
        "from wallboard.kit.source import Source\n")
    result = lint(copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "wallboard_plugins.inner -> wallboard.kit.source" in result.stdout


def test_the_fold_importing_the_server_breaks_the_layers(copy: Path) -> None:
    (copy / "wallboard" / "fold" / "upward.py").write_text(
        '"""A layer that reaches up."""\n\nfrom wallboard.server import hub\n')
    result = lint(copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "Layers: data flows one way BROKEN" in result.stdout
    assert "wallboard.fold.upward -> wallboard.server.hub" in result.stdout
