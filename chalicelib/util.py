"""Small helpers shared by the gateways: converting JSON values to and from DynamoDB."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


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


def storable_problem(value: Any, depth: int = 0) -> str | None:
    """Why DynamoDB could not store this JSON value (None when it can): too deep, a number it
    cannot represent."""
    if depth > 16:
        return "is nested too deeply (at most 16 levels)"
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) > 38:
        return "numbers must have at most 38 digits"
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        problem = storable_problem(child, depth + 1)
        if problem:
            return problem
    return None
