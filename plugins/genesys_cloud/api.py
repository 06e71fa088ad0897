"""Genesys Cloud's REST side: OAuth client credentials and rate-limited JSON requests."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import orjson

from wallboard.kit import Source, SourceError, parse_retry_after

# Refresh a token this long before Genesys says it expires (clocks differ, requests take time).
TOKEN_MARGIN_S = 60.0


class CredentialsRefused(SourceError):
    """The login host refused the client id or secret: retrying soon will not help."""


class GenesysApi:
    """Token handling and requests for one source; every failure is a SourceError."""

    def __init__(self, source: Source[Any], *, api_url: str, login_url: str, client_id: str,
                 client_secret: str, timeout_s: float, auth_retry_s: float) -> None:
        self.source = source
        self.api_url, self.login_url = api_url.rstrip("/"), login_url.rstrip("/")
        self.client_id, self._secret = client_id, client_secret
        self.timeout_s, self.auth_retry_s = timeout_s, auth_retry_s
        self.token: str | None = None
        self.expires_at = 0.0
        self.tokens_fetched = 0

    async def _send(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        """One request within the source's budget: (status, headers, body)."""
        limiter = self.source.limiter
        if limiter is not None:
            await limiter.acquire()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self.source.http.request(method, url, **kwargs) as response:
                    return response.status, response.headers, await response.read()
        except TimeoutError:
            raise SourceError(f"{method} {url}: no answer within {self.timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"{method} {url}: {type(exc).__name__}: {exc}") from None

    def _slow_down(self, method: str, url: str, status: int, headers: Any) -> SourceError:
        wait = parse_retry_after(headers.get("Retry-After"), self.source.clock.time())
        limiter = self.source.limiter
        if wait is not None and limiter is not None:
            limiter.defer(wait)
        after = f"; retry after {wait:g}s" if wait is not None else ""
        return SourceError(f"{method} {url}: HTTP {status} (rate limited){after}",
                           retry_after_s=wait)

    async def access_token(self) -> str:
        """A valid token: the cached one, or a new one from POST /oauth/token."""
        now = self.source.clock.time()
        if self.token is not None and now < self.expires_at - TOKEN_MARGIN_S:
            return self.token
        url = f"{self.login_url}/oauth/token"
        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode()
        status, headers, body = await self._send(
            "POST", url, data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"})
        if status in (429, 503):
            raise self._slow_down("POST", url, status, headers)
        answer = _json(body)
        if status in (400, 401, 403):
            error = answer.get("error") if isinstance(answer, dict) else None
            detail = answer.get("description") if isinstance(answer, dict) else None
            why = ": ".join(str(x)[:200] for x in (error, detail) if x) or f"HTTP {status}"
            raise CredentialsRefused(
                f"Genesys Cloud login {url} refused client {self.client_id!r}: {why} (check "
                f"client_id, client_secret and region); next try in {self.auth_retry_s:g}s",
                retry_after_s=self.auth_retry_s)
        if status >= 400:
            raise SourceError(f"POST {url}: HTTP {status}")
        token = answer.get("access_token") if isinstance(answer, dict) else None
        lifetime = answer.get("expires_in") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise SourceError(f"POST {url}: the answer has no access_token")
        self.token, self.tokens_fetched = token, self.tokens_fetched + 1
        life = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 3600.0
        self.expires_at = now + life
        return token

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """An API request with the bearer token; a 401 refreshes the token once and retries."""
        url = f"{self.api_url}{path}"
        for attempt in (1, 2):
            token = await self.access_token()
            kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
            if body is not None:
                kwargs["data"] = orjson.dumps(body)
                kwargs["headers"]["Content-Type"] = "application/json"
            status, headers, raw = await self._send(method, url, **kwargs)
            if status == 401 and attempt == 1:
                self.token = None  # expired or revoked before its time: fetch a new one
                continue
            if status in (429, 503):
                raise self._slow_down(method, url, status, headers)
            if status >= 400:
                raise SourceError(f"{method} {url}: HTTP {status}")
            answer = _json(raw)
            if answer is None and raw.strip():
                raise SourceError(f"{method} {url}: the answer is not JSON")
            return answer
        raise SourceError(f"{method} {url}: HTTP 401 with a fresh token (check the client's "
                          "roles)")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
