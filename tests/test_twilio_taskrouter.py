"""twilio_taskrouter: the §3.3 signature rules and the §3.2 mapping, without a server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest
import yaml
from wallboard_plugins.twilio_taskrouter.mapping import DEFAULT_ACTIVITIES, Mapper, MappingError
from wallboard_plugins.twilio_taskrouter.reconcile import to_snapshot
from wallboard_plugins.twilio_taskrouter.signature import (
    choose_key,
    compute,
    url_variants,
    validate,
)

from wallboard.config.settings import ConfigError, parse_settings
from wallboard.kit.signing import SignatureError
from wallboard.kit.source import SourceError
from wallboard.model.events import parse_event
from wallboard.server.plugins import build_registry, build_sources, make_plugin_manager

STATISTICS = Path(__file__).resolve().parent / "data" / "twilio_taskqueue_statistics.json"

VECTOR_URL = "https://example.com/taskrouter/events"
VECTOR_PARAMS = [("EventType", "task.created"), ("TaskSid", "WT0123"),
                 ("WorkspaceSid", "WS0123"), ("AccountSid", "AC0123")]
VECTOR_SIGNATURE = "rWhaKQqo+PWn/RQo9zy50N+xFPQ="


def test_protocols_test_vector_validates_with_and_without_the_port() -> None:
    assert compute("12345", VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    validate("12345", [VECTOR_URL], VECTOR_PARAMS, VECTOR_SIGNATURE)
    validate("12345", ["https://example.com:443/taskrouter/events"], VECTOR_PARAMS,
             VECTOR_SIGNATURE)
    # The parameters' order on the wire does not matter: they are sorted by name.
    validate("12345", [VECTOR_URL], VECTOR_PARAMS[::-1], VECTOR_SIGNATURE)


@pytest.mark.parametrize(("token", "url", "params", "signature", "reason"), [
    ("12346", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE, "bad_signature"),
    ("12345", "https://example.com/taskrouter/event", VECTOR_PARAMS, VECTOR_SIGNATURE,
     "bad_signature"),
    ("12345", VECTOR_URL, [*VECTOR_PARAMS, ("TaskAge", "3")], VECTOR_SIGNATURE,
     "bad_signature"),
    ("12345", VECTOR_URL, VECTOR_PARAMS, "", "missing_signature"),
    ("12345", VECTOR_URL, VECTOR_PARAMS, None, "missing_signature"),
])
def test_any_change_breaks_the_signature(token, url, params, signature, reason) -> None:
    with pytest.raises(SignatureError) as info:
        validate(token, [url], params, signature)
    assert info.value.reason == reason


def test_port_variants() -> None:
    assert url_variants("https://example.com/a?b=1") == [
        "https://example.com/a?b=1", "https://example.com:443/a?b=1"]
    assert url_variants("https://example.com:443/a") == [
        "https://example.com:443/a", "https://example.com/a"]
    assert url_variants("http://127.0.0.1:8080/a") == [
        "http://127.0.0.1:8080/a", "http://127.0.0.1/a"]


def test_multi_valued_parameters_sign_each_distinct_value_sorted() -> None:
    params = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "z")]
    by_hand = base64.b64encode(hmac.new(b"k", b"https://x/ayazb2", hashlib.sha1).digest())
    assert compute("k", "https://x/", params) == by_hand.decode()


def test_shared_key_variant_uses_hmac_sha256_with_the_named_key() -> None:
    header = "key=k1,algorithm=HMAC_SHA256"
    secret, algorithm = choose_key("auth-token", {"k1": "shared-secret"}, header)
    assert (secret, algorithm) == ("shared-secret", "sha256")
    signature = compute(secret, VECTOR_URL, VECTOR_PARAMS, algorithm)
    # By hand: the URL, then each parameter name and value sorted by name, HMAC-SHA256 base64.
    message = (VECTOR_URL + "AccountSidAC0123EventTypetask.createdTaskSidWT0123"
               "WorkspaceSidWS0123").encode()
    assert signature == base64.b64encode(
        hmac.new(b"shared-secret", message, hashlib.sha256).digest()).decode()
    validate(secret, [VECTOR_URL], VECTOR_PARAMS, signature, algorithm)
    assert signature != compute(secret, VECTOR_URL, VECTOR_PARAMS)  # not the SHA-1 one
    assert choose_key("auth-token", {}, None) == ("auth-token", "sha1")
    for bad in ("key=k2,algorithm=HMAC_SHA256", "key=k1,algorithm=HMAC_MD5"):
        with pytest.raises(SignatureError) as info:
            choose_key("auth-token", {"k1": "shared-secret"}, bad)
        assert info.value.reason == "bad_signature"


def cb(etype: str, **fields: str) -> dict[str, str]:
    """A callback's parameters."""
    return {"EventType": etype, "Sid": f"EV{etype}", "Timestamp": "1795420800", **fields}


class Stored(Mapper):
    """A mapper that remembers every callback at once, as the route does once it is stored."""

    def map(self, params):
        event = super().map(params)
        self.remember(params)
        return event


def test_mapping_of_a_task_lifecycle() -> None:
    mapper = Stored(queues={"WQ1": "sales"})
    task = {"TaskSid": "WT1", "TaskQueueSid": "WQ1", "TaskQueueName": "Sales"}
    assert mapper.map(cb("task.created", **task, TaskAge="0",
                         TaskChannelUniqueName="voice")) == {
        "type": "contact.queued", "id": "EVtask.created", "ts": 1795420800.0,
        "contact_id": "WT1", "queue": "sales", "channel": "voice"}
    assert mapper.map(cb("reservation.created", **task, TaskAge="4")) is None
    answered = mapper.map(cb("reservation.accepted", **task, TaskAge="12",
                             WorkerName="alice", TimestampMs="1795420812345"))
    assert answered == {"type": "contact.answered", "id": "EVreservation.accepted",
                        "ts": 1795420812.345, "contact_id": "WT1", "queue": "sales",
                        "agent": "alice", "wait_s": 12.0}
    assert mapper.map(cb("task.wrapup", **task, TaskAge="100")) is None
    ended = mapper.map(cb("task.completed", **task, TaskAge="130"))
    assert ended is not None
    assert (ended["type"], ended["agent"], ended["talk_s"], ended["wrap_s"]) == (
        "contact.ended", "alice", 88.0, 30.0)
    assert mapper.tasks == {}


def test_map_has_no_side_effect_until_remembered() -> None:
    mapper = Mapper()
    task = {"TaskSid": "WT1", "TaskQueueName": "sales"}
    for etype, age in [("task.created", "0"), ("reservation.accepted", "5")]:
        mapper.map(cb(etype, **task, TaskAge=age, WorkerName="alice"))
        mapper.remember(cb(etype, **task, TaskAge=age, WorkerName="alice"))
    completed = cb("task.completed", **task, TaskAge="65")
    assert mapper.map(completed) == mapper.map(completed)  # a retry maps the same way
    assert mapper.map(completed)["talk_s"] == 60.0
    mapper.remember(completed)
    assert mapper.tasks == {}


def test_canceled_or_deleted_while_pending_is_abandoned() -> None:
    mapper = Stored()
    task = {"TaskSid": "WT2", "TaskQueueName": "support", "TaskAge": "40"}
    assert mapper.map(cb("task.canceled", **task, TaskCanceledReason="hangup"))["type"] == \
        "contact.abandoned"
    deleted = mapper.map(cb("task.deleted", **task, TaskAssignmentStatus="pending"))
    assert deleted["type"] == "contact.abandoned" and deleted["wait_s"] == 40.0
    assert mapper.map(cb("task.deleted", **task, TaskAssignmentStatus="completed")) is None


def test_worker_activity_maps_through_the_configured_activities() -> None:
    mapper = Mapper(activities={"Lunch": "away", "On Call": "busy"})
    worker = {"WorkerSid": "WK1", "WorkerName": "alice"}
    states = [mapper.map(cb("worker.activity.update", **worker, WorkerActivityName=name))
              for name in ("Available", "On Call", "Lunch", "Offline", "Meditating")]
    assert [(s["state"], s.get("reason")) for s in states] == [
        ("available", None), ("busy", None), ("away", "Lunch"), ("offline", None),
        ("away", "Meditating")]


def test_a_long_activity_name_is_cut_to_the_reason_field_and_stays_valid() -> None:
    name = "Coaching session " * 20  # 340 characters: Twilio allows long friendly names
    event = Mapper().map(cb("worker.activity.update", WorkerSid="WK1", WorkerName="alice",
                            WorkerActivityName=name))
    assert (event["state"], event["reason"]) == ("away", name[:128])
    parse_event({**event, "id": "x", "source": "twilio"})  # the canonical check accepts it


def test_unusable_callbacks_name_the_parameter() -> None:
    mapper = Mapper()
    for params, field in [({"Sid": "EV1"}, "EventType"),
                          (cb("task.created", TaskQueueName="q"), "TaskSid"),
                          (cb("task.created", TaskSid="WT1", TaskAge="old"), "TaskAge"),
                          ({"EventType": "task.created", "TaskSid": "WT1"}, "Timestamp"),
                          (cb("worker.activity.update"), "WorkerName")]:
        with pytest.raises(MappingError) as info:
            mapper.map(params)
        assert info.value.field == field
    assert mapper.map(cb("workspace.updated")) is None


def test_bad_config_names_the_key() -> None:
    def config(**source: object) -> dict:
        return {"site": {"name": "x"}, "queues": {"sales": {}}, "sources": {
            "tw": {"type": "twilio_taskrouter", "auth_token": "a" * 32, **source}}}

    registry = build_registry(make_plugin_manager({"WALLBOARD_PLUGINS": "twilio_taskrouter"}))
    build_sources(parse_settings(config(), "<test>"), registry)
    for source, fragment in [({"auth_token": "short"}, "sources.tw.auth_token"),
                             ({"activities": {"Lunch": "eating"}}, "sources.tw.activities"),
                             ({"public_url": "wallboard.example"}, "sources.tw.public_url"),
                             ({"queued_on": "task.moved"}, "sources.tw.queued_on"),
                             ({"auth_tokn": "a" * 32}, "sources.tw.auth_tokn")]:
        with pytest.raises(ConfigError) as info:
            build_sources(parse_settings(config(**source), "<test>"), registry)
        assert fragment in str(info.value), (source, str(info.value))


def test_the_documented_config_example_is_valid() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "plugins" / "twilio_taskrouter.md")
    block = re.search(r"```yaml\n(.*?)```", page.read_text(), re.DOTALL)
    assert block is not None
    sources = yaml.safe_load(re.sub(r"\$\{\w+\}", "x" * 32, block.group(1)))["sources"]
    registry = build_registry(make_plugin_manager({"WALLBOARD_PLUGINS": "twilio_taskrouter"}))
    settings = parse_settings({"site": {"name": "x"}, "sources": sources}, "<docs>")
    [source] = build_sources(settings, registry)
    assert source.name == "twilio" and source.config.queues["Support"] == "support"


def test_taskqueue_statistics_become_a_queue_snapshot() -> None:
    payload = yaml.safe_load(STATISTICS.read_text())
    activities = {**DEFAULT_ACTIVITIES, "on call": "busy", "lunch": "away"}
    assert to_snapshot("sales", payload, activities, "away", 1795420800.0) == {
        "type": "queue.snapshot", "ts": 1795420800.0, "queue": "sales", "waiting": 4,
        "oldest_wait_s": 47, "agents": {"available": 2, "busy": 5, "away": 1, "offline": 1}}
    for bad in (None, [], {}, {"tasks_by_status": {"pending": -1}},
                {"tasks_by_status": {}, "longest_task_waiting_age": "old"},
                {"tasks_by_status": {}, "activity_statistics": [{"workers": 1}]}):
        with pytest.raises(SourceError):
            to_snapshot("sales", bad, activities, "away", 0.0)
