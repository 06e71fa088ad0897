"""Wait tiles are judged per queue: the ratio the server publishes and the tiles that read it."""

from __future__ import annotations

from wallboard.config.boards import TileConfig
from wallboard.config.settings import parse_settings
from wallboard.kpi.waitratio import RATIO_CRIT, RATIO_WARN, WAIT_KPIS, add_threshold_ratios
from wallboard.server import keys
from wallboard.server.app import create_app
from wallboard.server.boards import default_board, ratio_needs, resolve_boards, resolve_tile
from wallboard.server.hub import flatten
from wallboard.server.locales import messages


def _queue(channel: str, threshold: float, oldest: float, asa: float | None) -> dict:
    return {"channel": channel, "sl_threshold_s": threshold,
            "live": {"waiting": 1, "oldest_wait_s": oldest},
            "1h": {"asa_s": asa, "offered": 3}}


def test_each_scope_gets_the_worst_ratio_of_its_queues() -> None:
    tree = {
        "queues": {"voice": _queue("voice", 20, 45, 12), "email": _queue("email", 3600, 600, 900),
                   "chat": _queue("chat", 60, 0, None)},
        "channels": {c: {"live": {}, "1h": {}} for c in ("voice", "email", "chat")},
        "total": {"live": {}, "1h": {}},
    }
    needs = {(path, window, kpi) for path in [("total",), *[("channels", c) for c in (
        "voice", "email", "chat")], *[("queues", q) for q in ("voice", "email", "chat")]]
        for window in ("live", "1h") for kpi in WAIT_KPIS}
    add_threshold_ratios(tree, needs)
    assert tree["queues"]["voice"]["live"]["threshold_ratio"] == {"oldest_wait_s": 2.25}
    assert tree["queues"]["email"]["1h"]["threshold_ratio"] == {"asa_s": 0.25}
    # A window with nothing answered has no ASA: no ratio from it.
    assert "threshold_ratio" not in tree["queues"]["chat"]["1h"]
    assert tree["channels"]["email"]["live"]["threshold_ratio"] == {"oldest_wait_s": 0.1667}
    assert tree["channels"]["chat"]["live"]["threshold_ratio"] == {"oldest_wait_s": 0.0}
    # The site: the call 45 s against 20 s, not the e-mail's 10 min against an hour.
    assert tree["total"]["live"]["threshold_ratio"] == {"oldest_wait_s": 2.25}
    assert tree["total"]["1h"]["threshold_ratio"] == {"asa_s": 0.6}


def test_only_the_ratios_a_board_reads_are_computed() -> None:
    """Wait tiles without thresholds and queue tables read ratios; nothing else is published."""
    settings = parse_settings({
        "journal": {"enabled": False},
        "queues": {"sales": {}, "email": {"channel": "email",
                                          "service_level": {"threshold_s": 3600}}},
        "boards": {"b": {"tiles": [
            {"kpi": "oldest_wait_s"},
            {"kpi": "asa_s", "window": "1h", "channel": "email"},
            {"kpi": "oldest_wait_s", "queue": "sales", "thresholds": {"warn": 30}},
            {"type": "queue_table", "window": "today", "queues": ["email"]},
        ]}},
    })
    needs = ratio_needs(resolve_boards(settings))
    assert needs == {(("total",), "live", "oldest_wait_s"), (("channels", "email"), "1h", "asa_s"),
                     (("queues", "email"), "live", "oldest_wait_s")}
    app = create_app(settings)
    tree = app[keys.HUB].current()
    published = {k for k in flatten(tree) if ".threshold_ratio." in k}
    # Nothing is waiting: the live ratios are 0, the ASA has no answered contact to judge.
    assert published == {"total.live.threshold_ratio.oldest_wait_s",
                         "queues.email.live.threshold_ratio.oldest_wait_s"}


def test_wait_tiles_without_thresholds_read_the_ratio_and_others_keep_theirs() -> None:
    settings = parse_settings({
        "site": {"name": "Acme"},
        "queues": {"sales": {}, "email": {"channel": "email",
                                          "service_level": {"threshold_s": 3600}}},
        "boards": {"b": {"tiles": [
            {"kpi": "oldest_wait_s"},
            {"kpi": "asa_s", "window": "1h", "channel": "email"},
            {"kpi": "oldest_wait_s", "queue": "sales", "thresholds": {"warn": 30, "crit": 60}},
            {"kpi": "waiting"},
        ]}},
    })
    tiles = resolve_boards(settings)["b"]["tiles"]
    assert tiles[0]["level_key"] == "total.live.threshold_ratio.oldest_wait_s"
    assert tiles[0]["thresholds"] == {"direction": "high_bad", "warn": RATIO_WARN,
                                      "crit": RATIO_CRIT}
    assert tiles[1]["level_key"] == "channels.email.1h.threshold_ratio.asa_s"
    assert "level_key" not in tiles[2] and tiles[2]["thresholds"]["warn"] == 30
    assert "level_key" not in tiles[3]
    # The site's name is in the header: site-wide labels do not repeat it.
    assert [t["label"] for t in tiles] == ["Longest wait", "ASA · email",
                                           "Longest wait · sales", "Waiting"]


def test_the_default_board_sets_no_seconds_on_its_wait_tiles() -> None:
    settings = parse_settings({"queues": {"sales": {}, "email": {"channel": "email"}}})
    waits = [t for t in default_board(settings).tiles if t.kpi in ("oldest_wait_s", "asa_s")]
    assert waits and all(t.thresholds is None for t in waits)


def test_the_default_board_leaves_each_queues_service_level_to_its_target() -> None:
    settings = parse_settings({"queues": {"sales": {"service_level": {"target": 0.9}},
                                          "email": {"channel": "email"}}})
    per_queue = [t for t in default_board(settings).tiles
                 if t.kpi == "service_level" and t.queue]
    assert len(per_queue) == 2 and all(t.thresholds is None for t in per_queue)
    tiles = resolve_boards(settings)["overview"]["tiles"]
    levels = {t["scope"]: t["thresholds"] for t in tiles
              if t["kpi"] == "service_level" and t["prefix"].startswith("queues.")}
    assert levels == {"sales": {"direction": "low_bad", "warn": 0.9, "crit": 0.8},
                      "email": {"direction": "low_bad", "warn": 0.8, "crit": 0.7}}
    # The queue table reads each queue's target from the snapshot, not from its row.
    table = resolve_tile(0, TileConfig(type="queue_table", window="today"), settings,
                         messages("en"))
    assert all("sl_target" not in row for row in table["rows_keys"])


def test_service_level_tiles_without_thresholds_take_the_queues_target() -> None:
    settings = parse_settings({
        "queues": {"sales": {"service_level": {"target": 0.9}}, "chat": {"channel": "chat"},
                   "email": {"channel": "email", "service_level": {"target": 0.5}}},
        "boards": {"b": {"tiles": [
            {"kpi": "service_level", "queue": "sales", "window": "1h"},
            {"type": "ring", "channel": "chat", "window": "1h"},
            {"kpi": "service_level", "window": "1h"},
            {"kpi": "service_level", "queue": "sales", "window": "1h",
             "thresholds": {"direction": "low_bad", "warn": 0.7}},
        ]}},
    })
    tiles = resolve_boards(settings)["b"]["tiles"]
    assert tiles[0]["thresholds"] == {"direction": "low_bad", "warn": 0.9, "crit": 0.8}
    assert tiles[1]["thresholds"] == {"direction": "low_bad", "warn": 0.8, "crit": 0.7}
    assert tiles[2]["thresholds"] is None  # targets differ across the site: no single line
    assert tiles[3]["thresholds"]["warn"] == 0.7 and tiles[3]["thresholds"]["crit"] is None
