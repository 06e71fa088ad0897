"""Survey webhook authentication: the documented test vectors, tampering, missing headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from wallboard_plugins.surveys.base import TokenConfig, check_token
from wallboard_plugins.surveys.delighted import verify_signature as delighted_verify
from wallboard_plugins.surveys.surveymonkey import SurveyMonkeyConfig, compute
from wallboard_plugins.surveys.surveymonkey import verify_signature as surveymonkey_verify
from wallboard_plugins.surveys.typeform import verify_signature as typeform_verify

from wallboard.kit.http import Rejection

VECTORS = Path(__file__).resolve().parent / "data" / "signature_vectors.md"
BODY = b'{"event_id":"01","event_type":"form_response"}'
SURVEYS = {"1": {"questions": {"q": {"kind": "csat"}}}}


def vectors() -> dict[str, str]:
    """The Result column of the test-vector table, by scheme."""
    text = VECTORS.read_text()
    found = dict(re.findall(r"^\| (Typeform|SurveyMonkey|Delighted) \| [^|]+ \| `([^`]+)` \|$",
                            text, re.MULTILINE))
    assert set(found) == {"Typeform", "SurveyMonkey", "Delighted"}, found
    assert '{"event_id":"01","event_type":"form_response"}' in text  # the body they sign
    return found


def sm_config() -> SurveyMonkeyConfig:
    return SurveyMonkeyConfig.model_validate({
        "type": "surveymonkey", "api_key": "APIKEY", "api_secret": "APISECRET",
        "access_token": "token-123456", "surveys": SURVEYS})


def check(verify: object, body: bytes, header: str | None) -> str:
    """'ok', or the rejection's reason and status."""
    try:
        verify(body, header)  # type: ignore[operator]
    except Rejection as exc:
        return f"{exc.reason} {exc.status}"
    return "ok"


SCHEMES = {
    "Typeform": lambda body, header: typeform_verify("tfsecret", body, header),
    "Delighted": lambda body, header: delighted_verify("dlkey", body, header),
    "SurveyMonkey": lambda body, header: surveymonkey_verify(
        sm_config(), body, {} if header is None else {"Sm-Signature": header,
                                                     "Sm-Apikey": "APIKEY"}),
}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_the_documented_vector_validates(scheme: str) -> None:
    assert check(SCHEMES[scheme], BODY, vectors()[scheme]) == "ok"


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_a_one_byte_change_to_the_body_fails_with_403(scheme: str) -> None:
    good = vectors()[scheme]
    for i in (0, len(BODY) // 2, len(BODY) - 1):
        changed = BODY[:i] + bytes([BODY[i] ^ 0x01]) + BODY[i + 1:]
        assert check(SCHEMES[scheme], changed, good) == "bad_signature 403"
    assert check(SCHEMES[scheme], BODY + b" ", good) == "bad_signature 403"


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_a_missing_or_empty_header_fails_with_401(scheme: str) -> None:
    assert check(SCHEMES[scheme], BODY, None) == "missing_signature 401"
    assert check(SCHEMES[scheme], BODY, "") == "missing_signature 401"


def test_encodings_are_not_interchangeable() -> None:
    """Typeform is base64 and Delighted hex: the other encoding of the same HMAC fails."""
    import base64
    tf, dl = vectors()["Typeform"], vectors()["Delighted"]
    tf_as_hex = "sha256=" + base64.b64decode(tf.removeprefix("sha256=")).hex()
    assert check(SCHEMES["Typeform"], BODY, tf_as_hex) == "bad_signature 403"
    dl_as_b64 = "sha256=" + base64.b64encode(bytes.fromhex(dl.removeprefix("sha256="))).decode()
    assert check(SCHEMES["Delighted"], BODY, dl_as_b64) == "bad_signature 403"
    # a base64 digest is case-sensitive: flipping the case of a letter breaks it
    flipped = tf[:10] + tf[10].swapcase() + tf[11:]
    assert flipped != tf and check(SCHEMES["Typeform"], BODY, flipped) == "bad_signature 403"


def test_surveymonkey_key_is_api_key_ampersand_secret_and_the_apikey_header_must_match() -> None:
    assert compute("APIKEY", "APISECRET", BODY) == vectors()["SurveyMonkey"]
    assert compute("APIKEY&", "APISECRET", BODY) != vectors()["SurveyMonkey"]
    headers = {"Sm-Signature": vectors()["SurveyMonkey"], "Sm-Apikey": "OTHERKEY"}
    with pytest.raises(Rejection) as caught:
        surveymonkey_verify(sm_config(), BODY, headers)
    assert caught.value.status == 403


def token_config(**settings: str) -> TokenConfig:
    return TokenConfig.model_validate({"type": "questionpro", "surveys": SURVEYS, **settings})


def test_path_and_header_tokens() -> None:
    secret = "p" * 32
    both = token_config(token=secret, path_token="t" * 32)

    def outcome(headers: dict[str, str], path: str | None) -> str:
        try:
            check_token(both, headers, path)
        except Rejection as exc:
            return str(exc.status)
        return "ok"

    good = {"X-Wallboard-Token": secret}
    assert outcome(good, "t" * 32) == "ok"
    assert outcome(good, None) == "401"
    assert outcome(good, "t" * 31 + "u") == "403"
    assert outcome({}, "t" * 32) == "401"
    assert outcome({"X-Wallboard-Token": secret[:-1] + "q"}, "t" * 32) == "403"
    header_only = token_config(token=secret)
    with pytest.raises(Rejection) as caught:  # a path token where none is configured
        check_token(header_only, good, "t" * 32)
    assert caught.value.status == 403
