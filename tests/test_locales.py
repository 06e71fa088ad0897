"""The shipped message catalogues (web/locales/*.json) are complete and cover what boards use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wallboard.config.boards import TILE_TYPES
from wallboard.config.kpis import KPI_FORMATS
from wallboard.config.settings import SL_VARIANTS

LOCALES = Path(__file__).resolve().parents[1] / "web" / "locales"
STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
SHIPPED = sorted(p.stem for p in LOCALES.glob("*.json"))


def catalogue(name: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{name}.json").read_text(encoding="utf-8"))


def required_keys() -> set[str]:
    """Keys the server and the scripts look up, derived from the code, not from en.json."""
    keys = {f"kpi.{k}" for k in KPI_FORMATS} | {f"variant.{v}" for v in SL_VARIANTS}
    keys |= {"variant.mixed"} | {f"window.{w}" for w in ("live", "15m", "1h", "today")}
    keys |= {f"type.{t}" for t in TILE_TYPES if t not in ("number", "ring", "sparkline", "survey")}
    keys |= {f"type.survey_{k}" for k in ("csat", "nps", "ces")}
    for script in STATIC.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        keys |= set(re.findall(r"""\bt\(\s*"([a-z_]+\.[a-z_.]+)\"""", text))
        # Keys built from a prefix and a fixed list: agents.<state>, unit.<s|m|h|d>.
        keys |= {f"agents.{s}" for s in ("available", "busy", "wrapup", "away")}
        keys |= {f"unit.{u}" for u in "smhd"}
        keys |= {"table.queue", "table.waiting", "table.oldest", "table.sl", "trend.up",
                 "trend.down", "ui.muted"}  # picked by a condition, or used by the template
    return keys


def problems(name: str, messages: dict[str, str], reference: dict[str, str]) -> list[str]:
    """Missing or extra keys, empty texts, and placeholders that differ from English."""
    out = [f"{name}: missing key {k!r}" for k in sorted(set(reference) - set(messages))]
    out += [f"{name}: key {k!r} is not in en.json" for k in sorted(set(messages) - set(reference))]
    for key, text in messages.items():
        if not isinstance(text, str) or not text.strip():
            out.append(f"{name}: {key!r} is empty")
        elif key in reference and set(re.findall(r"{(\w+)}", text)) != set(
                re.findall(r"{(\w+)}", reference[key])):
            out.append(f"{name}: {key!r} has other placeholders than en.json")
    return out


def test_at_least_english_hebrew_and_arabic_are_shipped() -> None:
    assert {"en", "he", "ar"} <= set(SHIPPED)


def test_english_has_every_key_the_code_uses() -> None:
    missing = sorted(required_keys() - set(catalogue("en")))
    assert not missing, f"en.json lacks {missing}"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_locale_has_every_key(name: str) -> None:
    assert problems(name, catalogue(name), catalogue("en")) == []


def test_the_check_fails_when_a_key_is_missing_or_a_placeholder_is_lost() -> None:
    english = catalogue("en")
    hebrew = dict(catalogue("he"))
    del hebrew["kpi.waiting"]
    hebrew["ui.retry_in"] = "מתחבר מחדש"
    assert problems("he", hebrew, english) == [
        "he: missing key 'kpi.waiting'",
        "he: 'ui.retry_in' has other placeholders than en.json",
    ]


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "en"])
def test_translations_are_not_english_copies(name: str) -> None:
    english, other = catalogue("en"), catalogue(name)
    # Acronyms and pure placeholders may stay as they are; words may not.
    copied = [k for k, v in other.items()
              if v == english[k] and re.search(r"[A-Za-z]{4,}", v)]
    assert copied == []
