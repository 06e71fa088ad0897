"""Announcements a supervisor posts for the boards: plain text with an expiry."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAX_TEXT = 280
MAX_ACTIVE = 20
MAX_TTL_S = 7 * 86400


class AnnouncementError(ValueError):
    """A request to post an announcement is invalid; the message names the field."""


@dataclass
class Announcement:
    """One message: its text (never HTML), when it expires, and which boards show it."""

    id: int
    text: str
    posted: float
    expires: float
    boards: tuple[str, ...] = ()  # empty: every board


class Announcements:
    """The active announcements; expired ones disappear from the next snapshot."""

    def __init__(self, clock: Callable[[], float], on_change: Callable[[], None]) -> None:
        self.clock = clock
        self.on_change = on_change
        self.items: dict[int, Announcement] = {}
        self._ids = itertools.count(1)

    def post(self, body: object, known_boards: set[str]) -> Announcement:
        """Validate a JSON body {text, ttl_s, boards?} and add it."""
        if not isinstance(body, dict):
            raise AnnouncementError("body: must be a JSON object with text and ttl_s")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise AnnouncementError("text: must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise AnnouncementError(f"text: at most {MAX_TEXT} characters")
        ttl = body.get("ttl_s")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL_S:
            raise AnnouncementError(f"ttl_s: must be a number of seconds in (0, {MAX_TTL_S}]")
        boards = body.get("boards", [])
        if not isinstance(boards, list) or not all(isinstance(b, str) for b in boards):
            raise AnnouncementError("boards: must be a list of board ids")
        unknown = [b for b in boards if b not in known_boards]
        if unknown:
            raise AnnouncementError(f"boards: unknown board {unknown[0]!r}")
        now = self.clock()
        self.expire(now)
        if len(self.items) >= MAX_ACTIVE:
            raise AnnouncementError(f"at most {MAX_ACTIVE} active announcements")
        item = Announcement(next(self._ids), " ".join(text.split()), now, now + float(ttl),
                            tuple(boards))
        self.items[item.id] = item
        self.on_change()
        return item

    def remove(self, item_id: int) -> bool:
        """Withdraw one announcement; False if there is none with that id."""
        found = self.items.pop(item_id, None) is not None
        if found:
            self.on_change()
        return found

    def expire(self, now: float) -> None:
        """Forget announcements past their expiry."""
        for item_id in [i for i, a in self.items.items() if a.expires <= now]:
            del self.items[item_id]

    def active(self, now: float) -> list[dict[str, object]]:
        """The snapshot's view: what boards show now, oldest first."""
        self.expire(now)
        return [{"id": a.id, "text": a.text, "expires": round(a.expires, 3),
                 "boards": ",".join(a.boards)} for a in self.items.values()]

    def by_board(self, now: float, boards: Iterable[str]) -> dict[str, list[dict[str, object]]]:
        """The snapshot's view per board: each board's own and the all-boards ones, oldest first.

        Per board, not one list the page filters: a TV scoped to its board must not receive
        another board's announcements (nor learn the other board ids).
        """
        self.expire(now)
        return {board: [{"id": a.id, "text": a.text, "expires": round(a.expires, 3)}
                        for a in self.items.values() if not a.boards or board in a.boards]
                for board in boards}
