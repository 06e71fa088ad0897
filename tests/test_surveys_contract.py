"""Each survey connector passes the plugin kit's contract suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from wallboard_plugins.surveys import (
    DelightedSource,
    QualtricsSource,
    QuestionProSource,
    SurveyMonkeySource,
    TypeformSource,
)

from wallboard.kit.source import UP, SourceError
from wallboard.kit.testing import EVENTS, MALFORMED, PEER_DROP, HttpReplay, SourceContract
from wallboard.kit.testing.harness import SourceHarness
from wallboard.kit.testing.peer import ReplayPeer

DATA = Path(__file__).resolve().parent / "data" / "surveys"
SURVEYS = {"lT4Z3j": {"questions": {"csat": {"kind": "csat"}}}}
ROUTE = "its callbacks arrive at POST /api/surveys/{source}: tests/test_surveys_live.py"
NO_PEER = {
    EVENTS: f"it emits nothing itself; {ROUTE} checks the events of each callback",
    PEER_DROP: "it holds no connection: it is up while the server runs",
    MALFORMED: f"malformed callbacks get a 422 from the route, counted; {ROUTE}",
}
# Settings every survey source shares, refused with the key path in the message.
COMMON_BAD = [
    ({"surveys": {}}, "surveys: Dictionary should have at least 1 item"),
    ({"surveys": {"f": {"questions": {"q": {"kind": "stars"}}}}},
     "surveys.f.questions.q.kind: Input should be 'csat', 'nps' or 'ces'"),
    ({"surveys": {"f": {"questions": {"q": {"kind": "csat", "scale_min": 5, "scale_max": 1}}}}},
     "sources.contract.surveys.f.questions.q: scale_max (1) must be greater than scale_min (5)"),
    ({"surveys": {"f": {"questions": {"q": {"kind": "nps"}}, "fields": {"queu": "x"}}}},
     "surveys.f.fields.queu: Extra inputs are not permitted"),
    ({"max_body_bytes": 10}, "max_body_bytes: Input should be greater than or equal to 1024"),
]


class TestTypeformContract(SourceContract):
    source_class = TypeformSource
    config: ClassVar[dict] = {"secret": "typeform-secret", "surveys": SURVEYS}
    bad_configs: ClassVar[list] = [*COMMON_BAD,
                                   ({"secret": "short"}, "secret: String should have at least 8")]
    not_applicable: ClassVar[dict] = NO_PEER


class TestDelightedContract(SourceContract):
    source_class = DelightedSource
    config: ClassVar[dict] = {"api_key": "delighted-key", "surveys": {
        "nps": {"questions": {"score": {"kind": "nps"}}}}}
    bad_configs: ClassVar[list] = [*COMMON_BAD, ({"api_key": None}, "api_key: Field required")]
    not_applicable: ClassVar[dict] = NO_PEER


class TestQuestionProContract(SourceContract):
    source_class = QuestionProSource
    config: ClassVar[dict] = {"token": "t" * 32, "surveys": SURVEYS}
    bad_configs: ClassVar[list] = [
        *COMMON_BAD,
        ({"token": None}, "set token (a secret request header) and/or path_token"),
        ({"path_token": "has a space in it and is long"}, "path_token: String should match"),
        ({"token": "guessable"}, "token: String should have at least 24 characters"),
    ]
    not_applicable: ClassVar[dict] = NO_PEER


class TestQualtricsContract(SourceContract):
    source_class = QualtricsSource
    config: ClassVar[dict] = {"path_token": "p" * 32, "api_url": "https://iad1.qualtrics.com",
                              "api_token": "qualtrics-token", "surveys": SURVEYS}
    bad_configs: ClassVar[list] = [
        *COMMON_BAD,
        ({"path_token": None}, "set path_token (and/or token)"),
        ({"api_url": "iad1.qualtrics.com"}, "api_url: String should match pattern"),
        ({"api_token": None}, "api_token: Field required"),
    ]
    # The API is read per callback, from the route (a 502 when it fails, for Qualtrics to retry).
    not_applicable: ClassVar[dict] = NO_PEER


class TestSurveyMonkeyContract(SourceContract):
    """The source reads each survey's details (its choices) from the API, and refreshes them."""

    source_class = SurveyMonkeySource
    config: ClassVar[dict] = {"api_key": "client-id", "api_secret": "client-secret",
                              "access_token": "access-token", "api_url": "{peer_url}",
                              "surveys": {"105724755": {"questions": {
                                  "319352786": {"kind": "csat"}}}}}
    bad_configs: ClassVar[list] = [
        *COMMON_BAD,
        ({"api_secret": None}, "api_secret: Field required"),
        ({"api_url": "api.surveymonkey.com"}, "api_url: String should match pattern"),
        ({"refresh_s": 1}, "refresh_s: Input should be greater than or equal to 10"),
        ({"surveys": {"1": {"questions": {"q": {"kind": "csat", "value": "rank"}}}}},
         "surveys.1.questions.q.value: Input should be 'auto', 'position' or 'weight'"),
    ]
    peer = HttpReplay(DATA / "surveymonkey_survey_details.json")
    not_applicable: ClassVar[dict] = {
        EVENTS: NO_PEER[EVENTS],
        MALFORMED: "it emits no events to recover with; bad survey details make it go down "
                   "(tests/test_surveys_contract.py::test_bad_survey_details_are_a_source_error_naming_the_url)",
    }


async def test_bad_survey_details_are_a_source_error_naming_the_url() -> None:
    """Survey details not in the documented shape: a SourceError (the runtime marks the source
    down and retries), never a crash."""
    contract = TestSurveyMonkeyContract()
    spec = TestSurveyMonkeyContract.peer
    assert spec is not None
    async with ReplayPeer(spec) as peer, SourceHarness(contract.make_source(peer)) as h:
        await h.wait_for(lambda: h.status == UP, "come up", 5)
        source = h.source
        assert isinstance(source, SurveyMonkeySource)
        assert source.choices["105724755"]["319352786"]["3057839054"] == (4, None)
        for bad in (b"[]", b'{"pages": 3}', b"not json"):
            peer.send_next(bad)
            with pytest.raises(SourceError) as caught:
                await source.load_choices("105724755")
            assert "/v3/surveys/105724755/details" in str(caught.value)
        assert h.crashes == 0


def test_check_config_names_the_file_and_key_path_of_a_bad_mapping(tmp_path: Path) -> None:
    config = tmp_path / "board.yaml"
    config.write_text(
        "sources:\n"
        "  csat:\n"
        "    type: typeform\n"
        "    secret: typeform-secret\n"
        "    surveys:\n"
        "      lT4Z3j:\n"
        "        questions:\n"
        "          csat: {kind: stars}\n"
        "          nps: {kind: nps, scale_min: 10, scale_max: 0}\n")
    result = subprocess.run([sys.executable, "-m", "wallboard", "check-config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"{config}: sources.csat.surveys.lT4Z3j.questions.csat.kind: Input should be" in out
    assert (f"{config}: sources.csat.surveys.lT4Z3j.questions.nps: scale_max (0) must be "
            "greater than scale_min (10)") in out
