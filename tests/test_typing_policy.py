"""The type-check policy: mypy's settings stay strict, and an ignore names its code and reason."""

from __future__ import annotations

import pathlib
import re
import tomllib

REPO = pathlib.Path(__file__).parent.parent
CHECKED = ("wallboard", "plugins")
# `# type: ignore[code, ...]` then, on the same line, a comment saying why.
EXPLAINED = re.compile(r"#\s*type:\s*ignore\[[a-z-]+(,\s*[a-z-]+)*\]\s+#\s*\S")


def _sources() -> list[pathlib.Path]:
    return sorted(p for top in CHECKED for p in (REPO / top).rglob("*.py"))


def test_every_type_ignore_names_its_code_and_says_why():
    bare = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            for path in _sources()
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if "type: ignore" in line and not EXPLAINED.search(line)]
    assert not bare, "type: ignore without [code] and a reason:\n" + "\n".join(bare)


def test_mypy_checks_the_core_and_the_plugins_strictly():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == list(CHECKED)
    assert "pydantic.mypy" in config["plugins"]
    for flag in ("disallow_untyped_defs", "check_untyped_defs", "disallow_any_generics",
                 "warn_return_any", "warn_unused_ignores", "no_implicit_reexport"):
        assert config.get(flag) is True, flag
    assert "ignore_missing_imports" not in config  # a missing stub shows, rather than Any


def test_the_package_is_marked_typed_for_plugins():
    assert (REPO / "wallboard" / "py.typed").is_file()  # PEP 561: plugins' mypy reads the kit
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["wallboard"]
