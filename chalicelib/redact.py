"""Redaction: passwords, tokens, tickets and secrets never reach an audit record, a log line or an
error report (the audit logger, observe's logs and error tracking use it).

Applied to every event's details before it is stored, whatever the caller passed: keys that name
a secret are masked, values that look like a credential (a JWT, a bearer header, a signature) are
masked wherever they appear, and sizes are bounded so that an event always fits in one item.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MASK = "[REDACTED]"
MAX_STRING = 1024
MAX_ITEMS = 50
MAX_DEPTH = 6
MAX_DETAILS_BYTES = 4096

SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|pwd|token|ticket|secret|authori[sz]ation|api[_-]?key|cookie|signature|"
    r"credential|session|jwt|private[_-]?key|salt|password_hash)",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"(eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # a JWT
    r"|bearer\s+\S+"  # an Authorization header
    r"|sha256=[0-9a-f]{16,}"  # a webhook signature
    r"|scrypt\$\S+)",  # a stored password hash
    re.IGNORECASE,
)


def redact(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of `value` with secrets masked and sizes bounded (pure)."""
    if depth > MAX_DEPTH:
        return "[TOO DEEP]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, child) in enumerate(value.items()):
            if i >= MAX_ITEMS:
                out["_truncated"] = True
                break
            key = str(key)[:64]
            out[key] = MASK if SECRET_KEY.search(key) and child not in (None, "") else redact(child, depth + 1)
        return out
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        return [redact(child, depth + 1) for child in items[:MAX_ITEMS]]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**18 else str(value)
    if isinstance(value, float):
        # Stored as a Decimal and read back as int or float: keep what survives the round trip.
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    return scrub(str(value))


def scrub(text: str) -> str:
    """A free-text value with credential-looking parts masked, cut to MAX_STRING characters."""
    return SECRET_VALUE.sub(MASK, text[: MAX_STRING * 2])[:MAX_STRING]


def details(value: dict[str, Any] | None) -> dict[str, Any]:
    """Redacted details that fit in MAX_DETAILS_BYTES (else a truncated summary)."""
    cleaned = redact(dict(value or {}))
    encoded = json.dumps(cleaned, sort_keys=True, default=str)
    if len(encoded) <= MAX_DETAILS_BYTES:
        return cleaned
    return {"_truncated": True, "keys": sorted(cleaned)[:MAX_ITEMS], "preview": encoded[:512]}
