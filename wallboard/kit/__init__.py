"""The plugin kit: the published API for source plugins, bundled and third-party alike.

Owns the source base classes and their supervised runtime (`source`), the hook
specifications, rate limiting, webhook signatures, HTTP helpers for webhook-fed sources,
the contract test suite (`testing`) and the `new-plugin` templates (`scaffold`). A plugin
imports only this package and `wallboard.model` (checked in CI). May import the layers below
it (`ingest` and down); never the server.
"""

from wallboard import hookimpl
from wallboard.kit.http import (
    DEFAULT_MAX_BODY_BYTES,
    REASONS,
    Rejection,
    Rejections,
    count,
    json_error,
    read_body,
    refuse,
    signature_reason,
)
from wallboard.kit.ingest import INGEST, Ingest, Stored
from wallboard.kit.ratelimit import TokenBucket, parse_retry_after
from wallboard.kit.signing import SignatureError, sign, verify
from wallboard.kit.source import (
    Emit,
    PollConfig,
    PollSource,
    PushSource,
    RateLimitConfig,
    Source,
    SourceConfig,
    SourceError,
    SourceRunner,
    load_state_file,
    parse_time,
    save_state_file,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES", "INGEST", "REASONS", "Emit", "Ingest", "PollConfig", "PollSource",
    "PushSource", "RateLimitConfig", "Rejection", "Rejections", "SignatureError", "Source",
    "SourceConfig", "SourceError", "SourceRunner", "Stored", "TokenBucket", "count",
    "hookimpl", "json_error", "load_state_file", "parse_retry_after", "parse_time",
    "read_body", "refuse", "save_state_file", "sign", "signature_reason", "verify",
]
