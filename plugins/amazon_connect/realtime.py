"""AWS calls through botocore, and the real-time snapshot (GetCurrentMetricData/UserData).

botocore is synchronous: the client is built and every call is made in a worker thread
(`asyncio.to_thread`), never on the event loop. botocore's own retries are off, so that a
throttled or failed call comes back at once and the source's back-off decides when to retry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from wallboard.kit import SourceError

# (metric, unit) asked of GetCurrentMetricData, grouped by queue.
QUEUE_METRICS = (("CONTACTS_IN_QUEUE", "COUNT"), ("OLDEST_CONTACT_AGE", "SECONDS"),
                 ("AGENTS_AVAILABLE", "COUNT"), ("AGENTS_ON_CONTACT", "COUNT"),
                 ("AGENTS_AFTER_CONTACT_WORK", "COUNT"), ("AGENTS_NON_PRODUCTIVE", "COUNT"),
                 ("AGENTS_ERROR", "COUNT"), ("AGENTS_ONLINE", "COUNT"), ("AGENTS_STAFFED", "COUNT"))
# The board's agent states from the metrics; AGENTS_ONLINE and AGENTS_STAFFED are asked for
# but not mapped: they overlap the states below.
AGENT_METRICS = {"available": ("AGENTS_AVAILABLE",), "busy": ("AGENTS_ON_CONTACT",),
                 "wrapup": ("AGENTS_AFTER_CONTACT_WORK",),
                 "away": ("AGENTS_NON_PRODUCTIVE", "AGENTS_ERROR")}
MAX_QUEUES_PER_REQUEST = 100  # Filters.Queues takes 1..100 ids
MAX_RESULTS = 100  # the API's page size limit
MAX_PAGES = 200  # a peer that hands out NextToken for ever is an error, not a loop
CREDENTIAL_ERRORS = frozenset({
    "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
    "ExpiredTokenException", "InvalidClientTokenId", "IncompleteSignature",
    "MissingAuthenticationTokenException"})
THROTTLE_ERRORS = frozenset({"ThrottlingException", "TooManyRequestsException",
                             "LimitExceededException", "ProvisionedThroughputExceededException",
                             "KMSThrottlingException"})
BUSY_CONTACT_STATES = ("CONNECTED", "CONNECTED_ONHOLD")
DEFAULT_STATUSES = {"available": "available", "offline": "offline"}


class ApiError(SourceError):
    """An error answer of an AWS API; `code` is its error code (e.g. ExpiredIteratorException)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Throttled(ApiError):
    """The API said slow down (ThrottlingException, ProvisionedThroughputExceeded, HTTP 429)."""


def make_client(service: str, region: str, endpoint_url: str | None, key_id: str | None,
                secret: str | None, token: str | None, timeout_s: float) -> Any:
    """A botocore client, `connect` or `kinesis` (slow: loads the model; call it in a thread).

    Typed Any: boto3 ships no type information for its generated clients.
    """
    session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                    aws_session_token=token, region_name=region)
    config = BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"},
                        connect_timeout=timeout_s, read_timeout=timeout_s,
                        user_agent_extra="wallboard")
    return session.client(service, endpoint_url=endpoint_url, config=config)


def _client_error(service: str, operation: str, exc: ClientError) -> ApiError:
    """The SourceError of an AWS error answer: throttled, credentials, not found, other."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "")) or "error"
    message = str(error.get("Message", ""))[:200]
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in THROTTLE_ERRORS or status == 429:
        return Throttled(f"{operation}: throttled by AWS ({code}: {message})", code)
    if code in CREDENTIAL_ERRORS:
        return ApiError(f"{operation}: AWS refused the credentials ({code}: {message}); check "
                        "aws.aws_access_key_id/aws_secret_access_key and that the IAM policy "
                        f"allows {service}:{operation}", code)
    if code == "ResourceNotFoundException":
        return ApiError(f"{operation}: not found ({message}); check poll.instance_id, the "
                        "queue ids and agent_stream.stream_name", code)
    return ApiError(f"{operation}: HTTP {status} {code}: {message}", code)


def call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """One API call (blocking: run it in a thread); every failure is a SourceError.

    `operation` is botocore's method name; messages name the API action, as AWS documents it.
    """
    method = getattr(client, operation)
    service = client.meta.service_model.endpoint_prefix  # connect, kinesis: IAM's prefixes
    operation = "".join(part.title() for part in operation.split("_"))  # GetCurrentMetricData
    try:
        response = method(**params)
    except ClientError as exc:
        raise _client_error(service, operation, exc) from None
    except BotoCoreError as exc:  # unreachable endpoint, timeout, unparseable answer
        raise SourceError(f"{operation}: {type(exc).__name__}: {exc}") from None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # botocore's parser trips on some bodies that are not the documented JSON.
        raise SourceError(f"{operation}: unreadable response: {type(exc).__name__}") from None
    if not isinstance(response, dict):
        raise SourceError(f"{operation}: unreadable response")
    return response


def metric_requests(instance_id: str, queue_ids: list[str],
                    channels: list[str]) -> list[dict[str, Any]]:
    """GetCurrentMetricData parameters, one request per 100 queues (the filter's limit)."""
    requests = []
    for start in range(0, len(queue_ids), MAX_QUEUES_PER_REQUEST):
        filters: dict[str, Any] = {"Queues": queue_ids[start:start + MAX_QUEUES_PER_REQUEST]}
        if channels:
            filters["Channels"] = channels
        requests.append({"InstanceId": instance_id, "Filters": filters, "Groupings": ["QUEUE"],
                         "CurrentMetrics": [{"Name": n, "Unit": u} for n, u in QUEUE_METRICS],
                         "MaxResults": MAX_RESULTS})
    return requests


def user_requests(instance_id: str, queue_ids: list[str]) -> list[dict[str, Any]]:
    """GetCurrentUserData parameters: the agents of the queues, 100 queues per request."""
    return [{"InstanceId": instance_id,
             "Filters": {"Queues": queue_ids[start:start + MAX_QUEUES_PER_REQUEST]},
             "MaxResults": MAX_RESULTS}
            for start in range(0, len(queue_ids), MAX_QUEUES_PER_REQUEST)]


def _value(value: Any, what: str) -> float:
    """A metric value as a finite non-negative float, else SourceError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise SourceError(f"GetCurrentMetricData: {what} is not a count: {str(value)[:40]}")
    return float(value)


def _list(page: Mapping[str, Any], key: str, operation: str) -> list[Any]:
    """A page's list member `key`, else SourceError (not the documented shape)."""
    items = page.get(key)
    if not isinstance(items, list):
        raise SourceError(f"{operation}: the response has no {key} list")
    return items


def queue_snapshots(pages: Iterable[Mapping[str, Any]], queues: Mapping[str, str],
                    ts: float) -> list[dict[str, Any]]:
    """One queue.snapshot per board queue from GetCurrentMetricData pages.

    `queues` maps Connect queue ids to board queues; a configured queue without a result has
    nothing in it (the API leaves out queues with no data). Queues sharing a board queue add up.
    """
    totals: dict[str, dict[str, float]] = {board: {} for board in queues.values()}
    for page in pages:
        for result in _list(page, "MetricResults", "GetCurrentMetricData"):
            dims = result.get("Dimensions") if isinstance(result, dict) else None
            queue = dims.get("Queue") if isinstance(dims, dict) else None
            queue_id = queue.get("Id") if isinstance(queue, dict) else None
            if not isinstance(queue_id, str) or queue_id not in queues:
                continue
            board = totals[queues[queue_id]]
            for item in result.get("Collections") or []:
                metric = item.get("Metric") if isinstance(item, dict) else None
                name = metric.get("Name") if isinstance(metric, dict) else None
                if not isinstance(name, str) or item.get("Value") is None:
                    continue  # a null value: the API could not compute it
                value = _value(item["Value"], name)
                # Grouped by queue, the age is in seconds; the oldest contact wins.
                board[name] = (max(board.get(name, 0.0), value) if name == "OLDEST_CONTACT_AGE"
                               else board.get(name, 0.0) + value)
    events = []
    for board_queue, values in totals.items():
        event: dict[str, Any] = {"type": "queue.snapshot", "ts": ts, "queue": board_queue,
                                 "waiting": round(values.get("CONTACTS_IN_QUEUE", 0.0))}
        if "OLDEST_CONTACT_AGE" in values:
            event["oldest_wait_s"] = values["OLDEST_CONTACT_AGE"]
        if any(name in values for names in AGENT_METRICS.values() for name in names):
            event["agents"] = {state: round(sum(values.get(n, 0.0) for n in names))
                               for state, names in AGENT_METRICS.items()}
        events.append(event)
    return events


def agent_states(pages: Iterable[Mapping[str, Any]], agents: Mapping[str, str],
                 statuses: Mapping[str, str], unknown_status: str) -> dict[str, tuple[str, str]]:
    """Board agent -> (state, status name) from GetCurrentUserData pages (see `state_of`)."""
    found: dict[str, tuple[str, str]] = {}
    for page in pages:
        for data in _list(page, "UserDataList", "GetCurrentUserData"):
            user = data.get("User") if isinstance(data, dict) else None
            user_id = user.get("Id") if isinstance(user, dict) else None
            if not isinstance(user_id, str) or not user_id:
                continue
            status = data.get("Status") if isinstance(data.get("Status"), dict) else {}
            name = str(status.get("StatusName") or "")
            contact_states = {c.get("AgentContactState") for c in data.get("Contacts") or []
                              if isinstance(c, dict)}
            found[agents.get(user_id, user_id)] = (
                state_of(name, contact_states, statuses, unknown_status), name)
    return found


def state_of(status: str, contact_states: set[Any], statuses: Mapping[str, str],
             unknown_status: str) -> str:
    """An agent's board state from its status name and its contacts' states.

    A contact connected or on hold makes the agent busy, one in after-contact work (ENDED)
    wrap-up, whatever the status; otherwise the status name maps through `statuses`
    (case-insensitive; Available and Offline by default), else to `unknown_status`.
    """
    if contact_states & set(BUSY_CONTACT_STATES):
        return "busy"
    if "ENDED" in contact_states:
        return "wrapup"
    return statuses.get(status.lower(), DEFAULT_STATUSES.get(status.lower(), unknown_status))
