"""The layout the architecture map promises: few top-level modules, a charter per package."""

from __future__ import annotations

import ast
import pathlib
import re

import wallboard

ROOT = pathlib.Path(wallboard.__file__).parent
MAP = pathlib.Path(__file__).parent.parent / "docs" / "architecture.md"


def _packages() -> list[pathlib.Path]:
    return sorted(p.parent for p in ROOT.rglob("__init__.py") if "templates" not in p.parts)


def test_the_top_level_holds_only_entry_points():
    modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "cli.py"], modules


def test_every_package_has_a_charter_naming_what_it_may_import():
    for package in _packages():
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc, f"{package}: no docstring"
        if package.parent == ROOT:  # a layer: its charter says what it may import
            assert re.search(r"\bimports?\b", doc, re.IGNORECASE), f"{package}: {doc!r}"


def test_the_map_lists_every_layer_and_module():
    text = MAP.read_text()
    for package in _packages():
        if package.parent != ROOT:
            continue
        name = f"wallboard.{package.name}"
        assert f"`{name}`" in text, f"docs/architecture.md does not list {name}"
        for module in package.glob("*.py"):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in text, f"docs/architecture.md: {name} {module.name}"
