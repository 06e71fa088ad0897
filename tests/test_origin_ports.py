"""`server.allowed_origins` with an explicit default port matches what browsers send."""

from __future__ import annotations

import pytest

from wallboard.config.settings import ServerConfig
from wallboard.server.connections import origin_ok


@pytest.mark.parametrize(("listed", "origin", "ok"), [
    ("https://board.example:443", "https://board.example", True),
    ("HTTPS://Board.Example:443/", "https://board.example", True),
    ("http://board.example:80", "http://board.example", True),
    ("https://board.example", "https://board.example:443", True),
    ("https://[::1]:443", "https://[::1]", True),
    ("https://board.example:8443", "https://board.example:8443", True),
    ("https://board.example:8443", "https://board.example", False),
    ("https://board.example:443", "http://board.example", False),
    ("http://board.example:443", "https://board.example", False),
])
def test_a_listed_origin_with_its_default_port_matches_the_browsers_origin(
        listed: str, origin: str, ok: bool) -> None:
    allowed = ServerConfig(allowed_origins=[listed]).allowed_origins
    # A Host that is not the Origin's: only the list can let it in.
    assert origin_ok(origin, "other.example:8080", allowed) is ok
