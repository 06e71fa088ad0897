"""Message catalogues (web/locales/*.json): the board's labels in each shipped language."""

from __future__ import annotations

import importlib.resources
import json

DEFAULT_LOCALE = "en"


def language(locale: str) -> str:
    """The catalogue name for a locale tag: 'he-IL' → 'he'."""
    return locale.replace("_", "-").split("-")[0].lower() or DEFAULT_LOCALE


def shipped() -> dict[str, dict[str, str]]:
    """Every shipped catalogue by language, read from the package (at start, per board)."""
    folder = importlib.resources.files("wallboard_web") / "locales"
    out: dict[str, dict[str, str]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            out[entry.name.removesuffix(".json")] = json.loads(entry.read_text(encoding="utf-8"))
    return out


def messages(locale: str) -> dict[str, str]:
    """The catalogue for a locale, English filling any gap (the locale test forbids gaps)."""
    catalogues = shipped()
    merged = dict(catalogues.get(DEFAULT_LOCALE, {}))
    merged.update(catalogues.get(language(locale), {}))
    return merged
