"""The REST edge: the contract's error shape, body validation, pagination.

Routes raise `HttpError` (or let pydantic's `ValidationError` escape from `parse`); `run_view`,
which `runtime.Inkwell` wraps around every route, turns them into
`{"Code", "Message", "Errors"?}` answers. An unexpected exception is logged and answered with a
500 that carries no detail.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from chalice import Response
from pydantic import BaseModel, ValidationError

log = logging.getLogger("inkwell.http")

M = TypeVar("M", bound=BaseModel)

_CODES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    409: "ConflictError",
    413: "RequestEntityTooLargeError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class HttpError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def to_response(self) -> Response:
        body: dict[str, Any] = {"Code": _CODES.get(self.status, "Error"), "Message": self.message}
        if self.errors is not None:
            body["Errors"] = self.errors
        return Response(body=body, status_code=self.status, headers=self.headers)


def bad_request(message: str, field: str | None = None) -> HttpError:
    errors = [{"field": field, "message": message}] if field else None
    return HttpError(400, f"{field}: {message}" if field else message, errors)


def not_found(what: str) -> HttpError:
    return HttpError(404, f"{what} not found")


def conflict(message: str) -> HttpError:
    return HttpError(409, message)


def validation_error(exc: ValidationError) -> HttpError:
    errors = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "body"
        errors.append({"field": field, "message": err["msg"]})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return HttpError(400, f"invalid request: {summary}", errors)


def run_view(view: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        return view(**kwargs)
    except HttpError as exc:
        return exc.to_response()
    except ValidationError as exc:
        return validation_error(exc).to_response()
    except Exception:
        log.exception("unhandled error in %s", getattr(view, "__name__", view))
        return Response(
            body={"Code": "InternalServerError", "Message": "An internal server error occurred."},
            status_code=500,
        )


def json_body(request: Any) -> Any:
    """The request's JSON body; 400 when it is missing or not JSON."""
    raw = request.raw_body
    if not raw:
        raise bad_request("a JSON body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not valid JSON ({exc.__class__.__name__})") from None


def parse(model: type[M], request: Any) -> M:
    """Validate the JSON body against `model` (models forbid unknown fields)."""
    data = json_body(request)
    if not isinstance(data, dict):
        raise HttpError(400, "the body must be a JSON object", [{"field": "body", "message": "expected an object"}])
    return model.model_validate(data)


def query(request: Any) -> dict[str, str]:
    return dict(request.query_params or {})


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


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = {k: (int(v) if isinstance(v, Decimal) else v) for k, v in last_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, default=str).encode()).decode().rstrip("=")


def decode_cursor(params: dict[str, str], expected_keys: set[str]) -> dict[str, Any] | None:
    """The ExclusiveStartKey carried by `?cursor=`; 400 unless it has exactly the expected keys."""
    raw = params.get("cursor")
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request("is not a cursor this API returned", "cursor") from None
    if (
        not isinstance(data, dict)
        or set(data) != expected_keys
        or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in data.values())
    ):
        raise bad_request("is not a cursor this API returned", "cursor")
    return data


def page(items: list[Any], last_key: dict[str, Any] | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": encode_cursor(last_key)}


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
    start = decode_cursor(params, key_attrs)
    if start:
        kwargs["ExclusiveStartKey"] = start
    try:
        result = table.query(**kwargs)
    except Exception as exc:  # a well-formed cursor whose values have the wrong types
        if start and getattr(exc, "response", {}).get("Error", {}).get("Code") == "ValidationException":
            raise bad_request("is not a cursor this API returned", "cursor") from None
        raise
    return page([serialize(item) for item in result.get("Items", [])], result.get("LastEvaluatedKey"))


def no_content() -> Response:
    return Response(body="", status_code=204)


def created(body: Any) -> Response:
    return Response(body=body, status_code=201)


def accepted(body: Any) -> Response:
    return Response(body=body, status_code=202)
