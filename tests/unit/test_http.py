"""The REST edge without a server: error shape, body parsing, limits and signed cursors."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from boto3.dynamodb.conditions import Key
from pydantic import Field

from chalicelib import errors, http

KEYS = {"status", "updated_at", "id"}
LAST = {"status": "DRAFT", "updated_at": "2026-11-28T02:00:00.000Z", "id": "a" * 32}


def _request(raw: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(raw_body=raw)


class Sample(http.Body):
    name: str = Field(max_length=5)


# --- errors -----------------------------------------------------------------------------------


def test_a_refusal_answers_in_the_contract_shape():
    response = http.error_response(http.bad_request("is too long", "title"))
    assert response.status_code == 400
    assert response.body == {
        "Code": "BadRequestError",
        "Message": "title: is too long",
        "Errors": [{"field": "title", "message": "is too long"}],
    }
    assert http.error_response(errors.NotFound("article x")).body == {
        "Code": "NotFoundError",
        "Message": "article x not found",
    }
    assert http.error_response(errors.Conflict("no")).status_code == 409
    throttled = http.error_response(errors.Throttled("slow down", 7))
    assert (throttled.status_code, throttled.headers) == (429, {"Retry-After": "7"})


def test_parse_turns_validation_errors_into_a_400_naming_each_field():
    with pytest.raises(errors.Invalid) as info:
        http.parse(Sample, _request(b'{"name": "toolong", "other": 1}'))
    assert {e["field"] for e in info.value.details} == {"name", "other"}
    assert http.error_response(info.value).status_code == 400


# --- bodies -----------------------------------------------------------------------------------


def test_parse_validates_a_json_object():
    assert http.parse(Sample, _request(b'{"name": "ok"}')).name == "ok"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b'{"name": "\\ud800"}',  # a lone surrogate
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's recursion limit
        b"1" * 5000,  # more digits than Python converts
    ],
    ids=["none", "empty", "truncated", "text", "bad-utf8", "lone-surrogate", "too-deep", "huge-int"],
)
def test_a_missing_or_non_json_body_is_a_400_about_the_body(raw):
    with pytest.raises(errors.Invalid) as info:
        http.parse(Sample, _request(raw))
    assert info.value.details == [{"field": "body", "message": info.value.details[0]["message"]}]


@pytest.mark.parametrize("raw", [b"[]", b'"name"', b"3", b"null", b"true"])
def test_a_body_that_is_not_an_object_is_a_400_about_the_body(raw):
    with pytest.raises(errors.Invalid) as info:
        http.parse(Sample, _request(raw))
    assert info.value.details[0]["field"] == "body"


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [(None, 50), ("1", 1), ("200", 200), ("75", 75)])
def test_limit_defaults_to_50_and_allows_1_to_200(raw, expected):
    params = {} if raw is None else {"limit": raw}
    assert http.limit_param(params) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "201", "abc", "", "1.5", "9" * 5000])
def test_a_bad_limit_is_a_400_naming_limit(raw):
    with pytest.raises(errors.Invalid) as info:
        http.limit_param({"limit": raw})
    assert info.value.details[0]["field"] == "limit"


# --- cursors ----------------------------------------------------------------------------------


def test_a_cursor_round_trips_its_key():
    cursor = http.encode_cursor(LAST, "scope")
    assert http.decode_cursor({"cursor": cursor}, KEYS, "scope") == LAST


def test_no_last_key_means_no_cursor_and_no_cursor_means_the_start():
    assert http.encode_cursor(None) is None and http.encode_cursor({}) is None
    assert http.decode_cursor({}, KEYS) is None and http.decode_cursor({"cursor": ""}, KEYS) is None


def test_numeric_keys_survive_as_numbers():
    key = {"pk": "x", "seq": Decimal("42"), "score": Decimal("1.5")}
    decoded = http.decode_cursor({"cursor": http.encode_cursor(key)}, {"pk", "seq", "score"})
    assert decoded == {"pk": "x", "seq": 42, "score": Decimal("1.5")}


def _tamper(cursor: str) -> str:
    encoded, _, mac = cursor.partition(".")
    data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    data["id"] = "b" * 32
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=") + "." + mac


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda c: _tamper(c), id="edited-key"),
        pytest.param(lambda c: c.partition(".")[0], id="signature-dropped"),
        pytest.param(lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"), id="signature-changed"),
        pytest.param(lambda c: "garbage", id="garbage"),
        pytest.param(lambda c: "!!!.???", id="not-base64"),
        pytest.param(lambda c: http.encode_cursor(LAST, "another listing"), id="other-listing"),
        pytest.param(lambda c: http.encode_cursor({"id": "x"}, "scope"), id="wrong-keys"),
        pytest.param(lambda c: http.encode_cursor(dict(LAST, id=True), "scope"), id="boolean-value"),
        pytest.param(lambda c: http.encode_cursor(dict(LAST, id=["x"]), "scope"), id="list-value"),
    ],
)
def test_a_cursor_this_api_did_not_hand_out_is_a_400_naming_cursor(make):
    cursor = make(http.encode_cursor(LAST, "scope"))
    with pytest.raises(errors.Invalid) as info:
        http.decode_cursor({"cursor": cursor}, KEYS, "scope")
    assert info.value.details[0]["field"] == "cursor"


def test_listings_differ_in_scope_by_index_order_and_key_values():
    drafts = http.query_scope({"IndexName": "by_status", "KeyConditionExpression": Key("status").eq("DRAFT")})
    published = http.query_scope({"IndexName": "by_status", "KeyConditionExpression": Key("status").eq("PUBLISHED")})
    again = http.query_scope({"IndexName": "by_status", "KeyConditionExpression": Key("status").eq("DRAFT")})
    older = http.query_scope(
        {"IndexName": "by_status", "KeyConditionExpression": Key("status").eq("DRAFT"), "ScanIndexForward": False}
    )
    assert drafts == again
    assert len({drafts, published, older}) == 3
