"""Relative links and images in README.md and docs/ point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    out = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # external, or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            out.append(f"{page.relative_to(root)}: {target}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_reports_a_missing_target(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "x.md"
    page.parent.mkdir()
    page.write_text("[ok](x.md) [gone](missing.md#part) ![img](shots/none.png) [web](https://a.b)")
    assert broken_links(page, tmp_path) == ["docs/x.md: missing.md#part",
                                            "docs/x.md: shots/none.png"]
