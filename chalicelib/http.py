"""The REST edge: the contract's error shape, body validation, pagination.

Routes and the domain raise `errors.Refused` (`parse` turns pydantic's `ValidationError` into
`errors.Invalid` naming each field); the middleware (`runtime`) answers them with
`error_response`: `{"Code", "Message", "Errors"?}`. An unexpected exception is logged and
answered by Chalice with a 500 that carries no detail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Response
from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib import errors, timeutil, util

M = TypeVar("M", bound=BaseModel)

_CODES = {
    errors.Invalid: (400, "BadRequestError"),
    errors.Unauthenticated: (401, "UnauthorizedError"),
    errors.Forbidden: (403, "ForbiddenError"),
    errors.NotFound: (404, "NotFoundError"),
    errors.Conflict: (409, "ConflictError"),
    errors.TooLarge: (413, "RequestEntityTooLargeError"),
    errors.Throttled: (429, "TooManyRequestsError"),
    errors.Unavailable: (503, "ServiceUnavailableError"),
}

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def error_response(exc: errors.Refused) -> Response:
    """The contract's answer to a refusal: its status and `{"Code", "Message", "Errors"?}`."""
    status, code = next((v for k, v in _CODES.items() if isinstance(exc, k)), (400, "BadRequestError"))
    body: dict[str, Any] = {"Code": code, "Message": exc.message}
    if exc.details is not None:
        body["Errors"] = exc.details
    headers: dict[str, str | list[str]] = (
        {"Retry-After": str(exc.retry_after)} if isinstance(exc, (errors.Throttled, errors.Unavailable)) else {}
    )
    return Response(body=body, status_code=status, headers=headers)


def bad_request(message: str, field: str | None = None) -> errors.Invalid:
    return errors.Invalid(message, field)


def not_found(what: str) -> errors.NotFound:
    return errors.NotFound(what)


def conflict(message: str) -> errors.Conflict:
    return errors.Conflict(message)


def validation_error(exc: ValidationError) -> errors.Invalid:
    details = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "body"
        details.append({"field": field, "message": err["msg"]})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in details)
    return errors.Invalid(f"invalid request: {summary}", details=details)


class Body(BaseModel):
    """Base of every request body: unknown fields are refused, and the validator is built on first
    use rather than at import (cold starts pay only for the models a request needs)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


def json_body(request: Any) -> Any:
    """The request's JSON body; 400 (field `body`) when it is missing or not JSON."""
    raw = request.raw_body
    if not raw:
        raise bad_request("a JSON body is required", "body")
    try:
        data = json.loads(raw)
        # Lone surrogates ("\ud800") parse but cannot be stored or echoed as UTF-8.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise bad_request(f"is not valid JSON ({exc.__class__.__name__})", "body") from None
    return data


def parse(model: type[M], request: Any) -> M:
    """Validate the JSON body against `model` (models forbid unknown fields)."""
    data = json_body(request)
    if not isinstance(data, dict):
        raise bad_request("must be a JSON object", "body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def query(request: Any) -> dict[str, str]:
    return dict(request.query_params or {})


IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def idempotency_key(request: Any) -> str | None:
    """The request's optional `Idempotency-Key` header (1-128 of `A-Za-z0-9._:-`): a repeat of a
    request that carries the same key does nothing twice. 400 naming the header when malformed."""
    key = (request.headers or {}).get(IDEMPOTENCY_KEY.lower())
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise bad_request("must be 1 to 128 characters of A-Z a-z 0-9 . _ : -", IDEMPOTENCY_KEY)
    return key


def limit_param(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise bad_request("must be an integer", "limit") from None
    if not 1 <= value <= MAX_LIMIT:
        raise bad_request(f"must be between 1 and {MAX_LIMIT}", "limit")
    return value


def time_param(params: dict[str, str], name: str, default: float) -> float:
    """Query parameter `name` as epoch seconds (an ISO 8601 time), `default` when absent."""
    raw = params.get(name)
    if not raw:
        return default
    try:
        value = timeutil.parse_iso(raw)
        timeutil.iso_ms(value)  # also a time in years 1-9999 once in UTC (0001-01-01T00:00+14:00 is not)
    except (ValueError, OverflowError):
        raise bad_request("must be an ISO 8601 time such as 2026-11-28T02:00:00Z", name) from None
    return value


def _cursor_mac(payload: bytes, scope: str) -> str:
    """Cursors are signed so that a client can only hand back what this API gave it, for the
    listing it came from (`scope`). The key is derived from the audit key, which every function
    holds (it signs the audit events), not from the JWT secret, which only those that sign or
    check tokens may read: every function reaches this module."""
    from chalicelib import config, secret

    key = hmac.new(secret.get(config.AUDIT_DIGEST_KEY).encode(), b"inkwell-cursor", hashlib.sha256).digest()
    mac = hmac.new(key, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:16]
    return _b64(mac)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(last_key: dict[str, Any] | None, scope: str = "") -> str | None:
    """`?cursor=` for a DynamoDB LastEvaluatedKey (None when there is no next page)."""
    if not last_key:
        return None
    payload = json.dumps(util.from_dynamo(last_key), sort_keys=True, separators=(",", ":"), default=str).encode()
    return f"{_b64(payload)}.{_cursor_mac(payload, scope)}"


def decode_cursor(params: dict[str, str], expected_keys: set[str], scope: str = "") -> dict[str, Any] | None:
    """The ExclusiveStartKey carried by `?cursor=`; 400 unless this API signed it for `scope`
    and it has exactly the expected keys."""
    raw = params.get("cursor")
    if not raw:
        return None
    invalid = bad_request("is not a cursor this API returned", "cursor")
    encoded, _, mac = raw.partition(".")
    try:
        payload = _unb64(encoded)
        if not hmac.compare_digest(mac.encode(), _cursor_mac(payload, scope).encode()):
            raise invalid
        data = json.loads(payload)
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if (
        not isinstance(data, dict)
        or set(data) != expected_keys
        or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in data.values())
    ):
        raise invalid
    return util.to_dynamo(data)


def query_scope(query_kwargs: dict[str, Any]) -> str:
    """What identifies a listing: its index, order and key condition (with values), so that a
    cursor of `?status=DRAFT` is refused by `?status=PUBLISHED`."""
    from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder

    condition = query_kwargs.get("KeyConditionExpression")
    if isinstance(condition, ConditionBase):
        built = ConditionExpressionBuilder().build_expression(condition, is_key_condition=True)
        condition = [built.condition_expression, built.attribute_name_placeholders, built.attribute_value_placeholders]
    parts = [query_kwargs.get("IndexName"), query_kwargs.get("ScanIndexForward", True), condition]
    return json.dumps(parts, sort_keys=True, default=str)


def page(items: list[Any], last_key: dict[str, Any] | None, scope: str = "") -> dict[str, Any]:
    return {"items": items, "next_cursor": encode_cursor(last_key, scope)}


def query_page(
    table: Any,
    params: dict[str, str],
    key_attrs: set[str],
    serialize: Callable[[dict[str, Any]], Any],
    **query_kwargs: Any,
) -> dict[str, Any]:
    """One page of a DynamoDB Query as `{"items", "next_cursor"}`, driven by `?limit=&cursor=`.

    `key_attrs` are the attributes of LastEvaluatedKey for this table/index (its keys plus the
    table's keys), which a cursor must carry.
    """
    kwargs = dict(query_kwargs, Limit=limit_param(params))
    scope = query_scope(query_kwargs)
    start = decode_cursor(params, key_attrs, scope)
    if start:
        kwargs["ExclusiveStartKey"] = start
    try:
        result = table.query(**kwargs)
    except Exception as exc:  # a well-formed cursor whose values have the wrong types
        if start and (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") == "ValidationException":
            raise bad_request("is not a cursor this API returned", "cursor") from None
        raise
    return page([serialize(item) for item in result.get("Items", [])], result.get("LastEvaluatedKey"), scope)


def no_content() -> Response:
    return Response(body="", status_code=204)


def created(body: Any) -> Response:
    return Response(body=body, status_code=201)


def accepted(body: Any) -> Response:
    return Response(body=body, status_code=202)
