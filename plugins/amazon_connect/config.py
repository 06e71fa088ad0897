"""The amazon_connect source's settings: the route's secret, AWS access, the poll, the stream."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Secret, model_validator

from wallboard.kit import RateLimitConfig
from wallboard.model import AgentState

Channel = Literal["VOICE", "CHAT", "TASK", "EMAIL"]
ENDPOINT = r"^https?://\S+$"


class AwsSettings(BaseModel):
    """The region and credentials of the poll's and the stream's requests."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    # Without keys, boto3's default chain (environment, profile, instance role) is used.
    aws_access_key_id: str | None = Field(None, min_length=1, max_length=128)
    aws_secret_access_key: Secret[str] | None = None
    aws_session_token: Secret[str] | None = None
    timeout_s: float = Field(10.0, gt=0, le=120)  # connect and read timeout of one request

    @model_validator(mode="after")
    def _keys(self) -> AwsSettings:
        """Both keys or neither."""
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("give aws_access_key_id and aws_secret_access_key together, or "
                             "neither (boto3's default credential chain)")
        return self


class PollSettings(BaseModel):
    """Which Connect instance to ask for its real-time metrics, and how often."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str = Field(pattern=r"^[A-Za-z0-9-]{1,100}$")
    endpoint_url: str | None = Field(None, pattern=ENDPOINT)
    interval_s: float = Field(15.0, ge=1)
    channels: list[Channel] = Field(default_factory=list)
    user_data: bool = True  # GetCurrentUserData: each agent's state


class AgentStreamSettings(BaseModel):
    """The Kinesis data stream the instance's agent event stream writes to."""

    model_config = ConfigDict(extra="forbid")

    stream_name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    endpoint_url: str | None = Field(None, pattern=ENDPOINT)
    interval_s: float = Field(1.0, ge=0.2)  # GetRecords allows 5 reads per second per shard
    start: Literal["LATEST", "TRIM_HORIZON"] = "LATEST"


class AmazonConnectConfig(RateLimitConfig):
    """The EventBridge route's secret, the poll, the stream, and the board's names."""

    # The value EventBridge's connection sends in `events_header` (API key authorization).
    events_secret: Secret[Annotated[str, Field(min_length=16)]] | None = None
    events_header: str = Field("X-Wallboard-Key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    queues: dict[str, str] = Field(default_factory=dict)  # queue id or ARN -> board queue
    agents: dict[str, str] = Field(default_factory=dict)  # user id or agent ARN -> board agent
    statuses: dict[str, AgentState] = Field(default_factory=dict)  # agent status name -> state
    unknown_status: AgentState = "away"
    aws: AwsSettings | None = None
    poll: PollSettings | None = None
    agent_stream: AgentStreamSettings | None = None
    # GetCurrentMetricData and GetCurrentUserData allow 5 requests per second each.
    max_requests_per_s: float | None = Field(5.0, gt=0)
    burst: int = Field(5, ge=1, le=1000)

    @model_validator(mode="after")
    def _something_to_do(self) -> AmazonConnectConfig:
        """At least one way in, and what each needs."""
        if self.events_secret is None and self.poll is None and self.agent_stream is None:
            raise ValueError("give events_secret (EventBridge contact events), poll, "
                             "agent_stream, or several")
        if (self.poll is not None or self.agent_stream is not None) and self.aws is None:
            raise ValueError("poll and agent_stream need aws: the region (and credentials)")
        if self.poll is not None and not self.queues:
            raise ValueError("poll needs queues: the Connect queue ids to ask about")
        return self
