"""The recorded vendor payloads carry exactly the fields their API references document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"

# Zendesk "Tickets" JSON format: the fields a read returns (write-only ones left out).
ZENDESK_TICKET = {
    "allow_attachments", "allow_channelback", "assignee_id", "brand_id", "collaborator_ids",
    "created_at", "custom_fields", "custom_status_id", "description", "due_at", "email_cc_ids",
    "external_id", "fields", "follower_ids", "followup_ids", "forum_topic_id",
    "from_messaging_channel", "generated_timestamp", "group_id", "has_incidents", "id",
    "is_public", "organization_id", "priority", "problem_id", "raw_subject", "recipient",
    "requester_id", "satisfaction_rating", "sharing_agreement_ids", "status", "subject",
    "submitter_id", "tags", "ticket_form_id", "type", "updated_at", "url", "via",
    "via_followup_source_id",
}
# Zendesk "Ticket Metrics" JSON format.
ZENDESK_METRIC_SET = {
    "agent_wait_time_in_minutes", "assigned_at", "assignee_stations", "assignee_updated_at",
    "created_at", "custom_status_updated_at", "first_resolution_time_in_minutes",
    "full_resolution_time_in_minutes", "group_stations", "id", "initially_assigned_at",
    "latest_comment_added_at", "on_hold_time_in_minutes", "reopens", "replies",
    "reply_time_in_minutes", "reply_time_in_seconds", "requester_updated_at",
    "requester_wait_time_in_minutes", "solved_at", "status_updated_at", "ticket_id",
    "updated_at", "url",
}
ZENDESK_CURSOR_PAGE = {"after_url", "after_cursor", "before_url", "before_cursor",
                       "end_of_stream"}
# Zendesk "Ticket Metric Events": the common fields, the type-specific ones, the vocabularies.
METRIC_EVENT = {"id", "ticket_id", "metric", "instance_id", "type", "time"}
METRIC_EVENT_EXTRA = {"apply_sla": {"sla"}, "apply_group_sla": {"group_sla"},
                      "update_status": {"status"}, "breach": {"deleted"}}
METRIC_EVENT_TYPES = {"activate", "pause", "fulfill", "apply_sla", "apply_group_sla",
                      "breach", "update_status", "measure"}
METRICS = {"agent_work_time", "pausable_update_time", "periodic_update_time", "reply_time",
           "requester_wait_time", "resolution_time", "group_ownership_time"}
SLA = {"target", "target_in_seconds", "business_hours", "policy"}
TIME_PAGE = {"ticket_metric_events", "next_page", "count", "end_time", "end_of_stream"}
# Freshdesk API v2 ticket attributes and the `stats` of include=stats.
FRESHDESK_TICKET = {
    "association_type", "associated_tickets_count", "cc_emails", "company_id", "created_at",
    "custom_fields", "description", "description_text", "due_by", "email_config_id",
    "fr_due_by", "fr_escalated", "fwd_emails", "group_id", "id", "is_escalated", "nr_due_by",
    "nr_escalated", "priority", "product_id", "reply_cc_emails", "requester_id",
    "responder_id", "source", "spam", "stats", "status", "subject", "support_email", "tags",
    "ticket_cc_emails", "to_emails", "type", "updated_at",
}
FRESHDESK_STATS = {"agent_responded_at", "requester_responded_at", "first_responded_at",
                   "status_updated_at", "reopened_at", "resolved_at", "closed_at",
                   "pending_since"}


def load(name: str) -> Any:
    """One recorded file."""
    return json.loads((DATA / name).read_text())


def extra_and_missing(item: dict[str, Any], documented: set[str], required: set[str]
                      ) -> tuple[set[str], set[str]]:
    """Fields not in the reference, and required fields absent."""
    return set(item) - documented, required - set(item)


@pytest.mark.parametrize("page", ["tickets_1", "tickets_2", "tickets_3"])
def test_zendesk_ticket_export_pages_follow_the_reference(page: str) -> None:
    body = load(f"zendesk/{page}.json")
    assert set(body) - {"tickets", "metric_sets"} == ZENDESK_CURSOR_PAGE
    sets = list(body.get("metric_sets", []))
    for ticket in body["tickets"]:
        extra, missing = extra_and_missing(ticket, ZENDESK_TICKET | {"metric_set"},
                                           {"id", "status", "created_at", "updated_at",
                                            "group_id", "priority", "via", "url"})
        assert not extra and not missing, (page, ticket["id"], extra, missing)
        if "metric_set" in ticket:
            sets.append(ticket["metric_set"])
    assert sets, f"{page} carries no ticket metrics"
    ids = {t["id"] for t in body["tickets"]}
    for metric_set in sets:
        extra, missing = extra_and_missing(metric_set, ZENDESK_METRIC_SET,
                                           {"ticket_id", "reply_time_in_minutes", "reopens",
                                            "solved_at", "status_updated_at"})
        assert not extra and not missing, (page, extra, missing)
        assert metric_set["ticket_id"] in ids  # a side-load joins a ticket of the same page


@pytest.mark.parametrize("page", ["metric_events_1", "metric_events_2"])
def test_zendesk_metric_event_pages_follow_the_reference(page: str) -> None:
    body = load(f"zendesk/{page}.json")
    assert set(body) == TIME_PAGE
    events = body["ticket_metric_events"]
    assert body["count"] == len(events)
    times = [e["time"] for e in events]
    assert times == sorted(times)  # listed in chronological order
    assert f"start_time={body['end_time']}" in body["next_page"]
    for event in events:
        allowed = METRIC_EVENT | METRIC_EVENT_EXTRA.get(event["type"], set())
        assert set(event) - allowed == set() and set(event) >= METRIC_EVENT, event
        assert event["type"] in METRIC_EVENT_TYPES and event["metric"] in METRICS
        if "sla" in event:
            assert set(event["sla"]) <= SLA and "target" in event["sla"]


def test_freshdesk_tickets_follow_the_reference() -> None:
    body = load("freshdesk_tickets.json")
    tickets = body["first"] + body["later"]
    assert tickets
    for ticket in tickets:
        extra, missing = extra_and_missing(ticket, FRESHDESK_TICKET,
                                           {"id", "status", "priority", "group_id", "due_by",
                                            "fr_due_by", "created_at", "updated_at", "stats"})
        assert not extra and not missing, (ticket["id"], extra, missing)
        assert set(ticket["stats"]) == FRESHDESK_STATS
        assert ticket["status"] in {2, 3, 4, 5} and ticket["priority"] in {1, 2, 3, 4}


def test_a_made_up_field_is_caught() -> None:
    """The check above can fail: a ticket with an invented field does not pass."""
    ticket = dict(load("zendesk/tickets_1.json")["tickets"][0], sla_due="soon")
    assert extra_and_missing(ticket, ZENDESK_TICKET, set())[0] == {"sla_due"}
