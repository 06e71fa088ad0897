"""Webhook signatures: HMAC over the raw body, constant-time compare, timestamp tolerance."""

from __future__ import annotations

import base64
import hmac
import math
import time
from collections.abc import Sequence

ALGORITHMS = ("sha256", "sha512", "sha1")
ENCODINGS = ("hex", "base64")
DEFAULT_TOLERANCE_S = 300.0


class SignatureError(ValueError):
    """A request's signature is missing, wrong or too old; `reason` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signed_message(body: bytes, timestamp: str | None = None) -> bytes:
    """What is signed: the raw body, prefixed with `<timestamp>.` when a timestamp is used."""
    return body if timestamp is None else timestamp.encode() + b"." + body


def sign(secret: str | bytes, body: bytes, *, timestamp: str | None = None,
         algorithm: str = "sha256", encoding: str = "hex") -> str:
    """The HMAC of the body (and timestamp), hex or base64: what a sender puts in its header."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, signed_message(body, timestamp), algorithm)
    if encoding == "base64":
        return base64.b64encode(digest.digest()).decode()
    return digest.hexdigest()


def _check_timestamp(timestamp: str, tolerance_s: float, now: float) -> None:
    try:
        sent = float(timestamp)
    except ValueError:
        raise SignatureError("bad_timestamp", f"timestamp {timestamp[:32]!r} is not "
                                              "epoch seconds") from None
    if not math.isfinite(sent):
        raise SignatureError("bad_timestamp", "timestamp is not a finite number")
    if abs(now - sent) > tolerance_s:
        raise SignatureError("stale_timestamp", f"timestamp is {abs(now - sent):.0f}s away "
                                                f"from now (tolerance {tolerance_s:g}s)")


def verify(secrets: str | bytes | Sequence[str | bytes], body: bytes, signature: str | None,
           *, timestamp: str | None = None, tolerance_s: float | None = DEFAULT_TOLERANCE_S,
           now: float | None = None, algorithm: str = "sha256", prefix: str = "",
           encoding: str = "hex") -> None:
    """Raise SignatureError unless `signature` is the HMAC of the raw body under a secret.

    Several secrets may be given during a key rotation. With `timestamp`, the signed message
    is `<timestamp>.<body>` and a timestamp further than `tolerance_s` from now is refused, so a
    captured request cannot be replayed later. `prefix` is stripped (e.g. "sha256="). The
    digest is hex (compared case-insensitively) or base64 (compared exactly).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm!r}; use one of {ALGORITHMS}")
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}; use one of {ENCODINGS}")
    if not signature:
        raise SignatureError("missing_signature", "the request is not signed")
    if tolerance_s is not None:
        if timestamp is None:
            raise SignatureError("missing_timestamp", "the request carries no timestamp")
        _check_timestamp(timestamp, tolerance_s, time.time() if now is None else now)
    given = signature.strip().removeprefix(prefix).strip()
    if encoding == "hex":
        given = given.lower()
    keys = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    # Compare against every key, always, so timing does not reveal which one matched.
    matched = False
    for key in keys:
        expected = sign(key, body, timestamp=timestamp, algorithm=algorithm, encoding=encoding)
        matched |= hmac.compare_digest(expected.encode(), given.encode())
    if not matched:
        raise SignatureError("bad_signature", "the signature does not match the body")

