"""A local HTTP peer standing in for the SurveyMonkey and Qualtrics APIs (documented payloads)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

DATA = Path(__file__).resolve().parent / "data" / "surveys"
SM_TOKEN = "sm-access-token-123"
QUALTRICS_TOKEN = "qualtrics-api-token-1"


def load(name: str) -> Any:
    """A recorded payload from tests/data/surveys."""
    return orjson.loads((DATA / name).read_bytes())


class SurveyApiPeer:
    """Serves survey details and responses; tests edit `responses` and read `requests`."""

    def __init__(self) -> None:
        self.sm_survey = load("surveymonkey_survey_details.json")
        self.responses: dict[str, Any] = {}  # path -> JSON body
        self.requests: list[str] = []
        self.fail_with: int | None = None
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._get)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self) -> None:
        await self.server.start_server()

    async def close(self) -> None:
        await self.server.close()

    def sm_response(self, response_id: str, choice_id: str, modified: str) -> None:
        """Serve a SurveyMonkey response's details with that choice and date_modified."""
        details = copy.deepcopy(load("surveymonkey_response_details.json"))
        details["id"] = response_id
        details["date_modified"] = modified
        details["pages"][0]["questions"][0]["answers"] = [{"choice_id": choice_id}]
        self.responses[f"/v3/surveys/105724755/responses/{response_id}/details"] = details

    def qualtrics_response(self, response_id: str, value: int, recorded: str) -> None:
        """Serve a Qualtrics response with QID1 = value, recorded at `recorded`."""
        body = copy.deepcopy(load("qualtrics_response.json"))
        body["result"]["responseId"] = response_id
        body["result"]["values"]["QID1"] = value
        body["result"]["values"]["recordedDate"] = recorded
        self.responses[f"/API/v3/surveys/SV_abc/responses/{response_id}"] = body

    async def _get(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if self.fail_with is not None:
            return web.Response(status=self.fail_with)
        if request.path.startswith("/v3/"):
            if request.headers.get("Authorization") != f"Bearer {SM_TOKEN}":
                return web.Response(status=401)
            if request.path == "/v3/surveys/105724755/details":
                return web.json_response(self.sm_survey)
        elif request.headers.get("X-API-TOKEN") != QUALTRICS_TOKEN:
            return web.Response(status=401)
        body = self.responses.get(request.path)
        if body is None:
            return web.Response(status=404)
        return web.json_response(body)
