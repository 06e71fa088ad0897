"""X-Twilio-Signature validation: HMAC over the URL and sorted POST parameters (protocols §3.3)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from wallboard.kit import SignatureError

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
DEFAULT_PORTS = {"https": 443, "http": 80}


def signed_string(url: str, params: Iterable[tuple[str, str]]) -> str:
    """The URL followed by name+value of each parameter, names sorted, then values sorted."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    return url + "".join(name + value for name in sorted(values)
                         for value in sorted(values[name]))


def compute(key: str, url: str, params: Iterable[tuple[str, str]],
            algorithm: str = "sha1") -> str:
    """The base64 HMAC (SHA-1 with the Auth Token, SHA-256 with a shared key) Twilio sends."""
    digest = hmac.new(key.encode(), signed_string(url, params).encode(), algorithm).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.username or parts.password:
        host = parts.netloc.rpartition("@")[0] + "@" + host
    variants = [url, urlunsplit(parts._replace(netloc=host))]
    default = DEFAULT_PORTS.get(parts.scheme)
    if parts.port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return list(dict.fromkeys(variants))


def parse_settings(header: str) -> dict[str, str]:
    """`key=<id>,algorithm=HMAC_SHA256` as a dict."""
    settings = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            settings[name.strip().lower()] = value.strip()
    return settings


def choose_key(auth_token: str, shared_keys: Mapping[str, str],
               settings_header: str | None) -> tuple[str, str]:
    """(secret, hashlib algorithm): the Auth Token with SHA-1, or the named shared key."""
    if settings_header is None:
        return auth_token, "sha1"
    settings = parse_settings(settings_header)
    if settings.get("algorithm", "").upper() != "HMAC_SHA256":
        raise SignatureError("bad_signature", f"{SETTINGS_HEADER}: unsupported algorithm "
                                              f"{settings.get('algorithm', '')[:32]!r}")
    key_id = settings.get("key", "")
    secret = shared_keys.get(key_id)
    if secret is None:
        raise SignatureError("bad_signature", f"{SETTINGS_HEADER}: unknown key "
                                              f"{key_id[:64]!r}")
    return secret, "sha256"


def validate(secret: str, urls: Iterable[str], params: list[tuple[str, str]],
             signature: str | None, algorithm: str = "sha1") -> None:
    """Raise SignatureError unless `signature` matches one of the URLs (and its port variants)."""
    if not signature:
        raise SignatureError("missing_signature", f"the request has no {SIGNATURE_HEADER}")
    given = signature.strip().encode()
    candidates = [v for url in urls for v in url_variants(url)]
    matched = False
    # Compare against every candidate, always, so timing does not reveal which one matched.
    for url in dict.fromkeys(candidates):
        expected = compute(secret, url, params, algorithm).encode()
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("bad_signature", "the signature does not match the URL and "
                                              "parameters")

