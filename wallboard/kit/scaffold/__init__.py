"""`wallboard new-plugin`: writes a ready-to-install source plugin package."""

from __future__ import annotations

import importlib.resources
import keyword
import re
from collections.abc import Collection
from pathlib import Path

from wallboard import __version__

STYLES = ("poll", "push")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# (template, path in the new project); {package} is replaced by the package name.
_FILES = {
    "common": [("pyproject.toml.tmpl", "pyproject.toml"), ("README.md.tmpl", "README.md"),
               ("__init__.py.tmpl", "src/{package}/__init__.py")],
    "poll": [("source.py.tmpl", "src/{package}/source.py"),
             ("recording.json", "tests/fixtures/recording.json"),
             ("test_source.py.tmpl", "tests/test_source.py")],
    "push": [("source.py.tmpl", "src/{package}/source.py"),
             ("recording.ndjson", "tests/fixtures/recording.ndjson"),
             ("test_source.py.tmpl", "tests/test_source.py")],
}
_CONFIG_EXAMPLES = {
    "poll": "    url: https://pbx.example.com/api/queues\n    token: ${PBX_TOKEN}\n"
            "    interval_s: 10",
    "push": "    host: pbx.example.com\n    port: 5038",
}


class ScaffoldError(ValueError):
    """The plugin cannot be written (bad name, target exists)."""


def check_name(name: str, taken: Collection[str] = ()) -> None:
    """Refuse names that are not a valid source type and package name, or already in use."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"plugin name {name!r}: use 2-40 lower-case letters, digits and "
                            "underscores, starting with a letter (it is the source type name)")
    if name in taken:
        raise ScaffoldError(f"plugin name {name!r}: a source type of that name is already "
                            "installed")


def names(name: str) -> dict[str, str]:
    """Package, distribution and class names derived from the source type name."""
    package = name if name.startswith("wallboard_") else f"wallboard_{name}"
    base = "".join(part.capitalize() for part in name.removesuffix("_source").split("_"))
    return {"type": name, "package": package, "dist": package.replace("_", "-"),
            "source_class": f"{base}Source", "config_class": f"{base}Config",
            "wallboard_version": __version__}


def write_plugin(name: str, style: str, parent: Path, taken: Collection[str] = ()) -> Path:
    """Write the project for source type `name` into `parent/name`; returns that directory."""
    check_name(name, taken)
    if style not in STYLES:
        raise ScaffoldError(f"style {style!r}: use one of {', '.join(STYLES)}")
    root = parent / name
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or --dir")
    values = {**names(name), "style": style, "config_example": _CONFIG_EXAMPLES[style]}
    templates = importlib.resources.files(__package__) / "templates"
    for group in ("common", style):
        for template, target in _FILES[group]:
            text = (templates / group / template).read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace("{{" + key + "}}", value)
            path = root / target.format(package=values["package"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return root
