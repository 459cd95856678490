"""Small helpers shared by the gateways: converting JSON values to and from DynamoDB."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any


def refused_item(exc: Any) -> dict[str, Any] | None:
    """The item a ConditionalCheckFailedException carries (`ReturnValuesOnConditionCheckFailure`
    ALL_OLD), as the resource layer would return it; None when there is none."""
    raw = (getattr(exc, "response", None) or {}).get("Item")
    if not raw:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    return {k: deserialize(v) for k, v in raw.items()}


# Every conditional write names itself in its item with a token of its own (new per write), so that
# a write meeting its own earlier application (AWS applied it, the answer was lost, the SDK sent it
# again) sees its token in the refused item and knows it is done rather than refused.
WRITE_TOKEN = "write_token"


def applied(old: dict[str, Any] | None, token: str) -> bool:
    """Whether the item as it stands (`old`) was last written by the write carrying `token`."""
    return old is not None and old.get(WRITE_TOKEN) == token


def create_args(item: dict[str, Any], key: str = "id") -> dict[str, Any]:
    """PutItem arguments creating `item` (which carries its `WRITE_TOKEN`) unless its `key` is
    taken, returning the item that holds it when refused (for `own_repeat`)."""
    return {
        "Item": item,
        "ConditionExpression": f"attribute_not_exists({key})",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


@contextlib.contextmanager
def own_repeat(item: dict[str, Any]) -> Iterator[None]:
    """Around a `create_args` PutItem of `item`: a refusal by the item itself (this very write,
    applied, its answer lost, sent again by the SDK) is done; any other refusal is raised."""
    try:
        yield
    except Exception as exc:
        code = ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code")
        if code != "ConditionalCheckFailedException" or not applied(refused_item(exc), item[WRITE_TOKEN]):
            raise


# A counter's ADD is not conditional, so the write-token check above does not apply: a counter
# update instead carries a token of its own (`last_write`) and is refused when the counter already
# carries it, so an ADD that AWS applied but whose answer was lost, sent again by the SDK, does
# not count twice. Its limit: a repeat that meets another writer's update made in between (the
# same few milliseconds) counts twice. Use `ONCE_NAMES`, `ONCE_CONDITION`, `ONCE_SET` and a
# fresh `once_token()` as `:once`.
ONCE_NAMES = {"#once": "last_write"}
ONCE_CONDITION = "(attribute_not_exists(#once) OR #once <> :once)"
ONCE_SET = "#once = :once"


def once_token() -> str:
    import uuid

    return uuid.uuid4().hex


def once_applied(old: dict[str, Any] | None, token: str) -> bool:
    """Whether the item a refused `ONCE_CONDITION` update saw (`refused_item`, with
    `ReturnValuesOnConditionCheckFailure` ALL_OLD) carries `token`: that update was applied."""
    return old is not None and old.get(ONCE_NAMES["#once"]) == token


def to_dynamo(value: Any) -> Any:
    """JSON value -> what the DynamoDB resource layer accepts (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """DynamoDB value -> plain JSON (Decimals become int or float, sets become lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [from_dynamo(v) for v in value]
    return value


MAX_DEPTH = 16


def storable_problem(value: Any, depth: int = 0) -> str | None:
    """Why DynamoDB could not store this JSON value (None when it can): too deep, a number it
    cannot represent (not finite, more than 38 significant digits, magnitude beyond 1e126 or below
    1e-130), an object key that is empty (DynamoDB refuses an empty attribute name at any depth)."""
    if depth > MAX_DEPTH:
        return f"is nested too deeply (at most {MAX_DEPTH} levels)"
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _storable_number(value):
        return "numbers must have at most 38 digits and a magnitude between 1e-130 and 1e126"
    if isinstance(value, dict) and "" in value:
        return "object keys must not be empty"
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        problem = storable_problem(child, depth + 1)
        if problem:
            return problem
    return None


def _storable_number(value: int | float) -> bool:
    from boto3.dynamodb.types import DYNAMODB_CONTEXT  # the context boto3 serializes numbers with

    if isinstance(value, int) and len(str(abs(value))) > 40:  # cheap bound before Decimal work
        return False
    try:
        number = DYNAMODB_CONTEXT.create_decimal(Decimal(str(value)) if isinstance(value, float) else value)
    except ArithmeticError:  # decimal.Inexact, Rounded, Overflow, Underflow ...
        return False
    return number == 0 or _SMALLEST <= abs(number) < _TOO_LARGE


_SMALLEST, _TOO_LARGE = Decimal("1E-130"), Decimal("1E+126")
