"""What job search reads: the jobs table's search indexes, and the attributes and items that
put a job in them (pure; records.py and the worker write them, search.py reads them).

Every index is sorted by `created_at` (newest first when read backwards) and keyed by one
filter: `by_queue` (`queue`), `by_state` (`state`), `by_type` (`type`), `by_user` (`s_user`, set
only on a job someone caused), `by_article` (`s_article`, only on a job whose payload names an
article), `by_day` (`s_day`, the UTC day the job was created: "every job" is a walk over the
days kept). Those are the record's own attributes, so a job is in them as long as it is kept,
and gone with it.

`by_word` is over word items, one per word of a failed attempt's error
(`word#<word>#<job id>`, `s_word`, `job_id`, `created_at` = when it failed), written with the
attempt's log (one request) and expiring with the longest a failed job is kept. A search by
words reads the index of one of them and keeps the jobs whose error still has every word, so a
word item that outlives its job, or a job whose error changed since, is never an answer.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib import timeutil

SORT = "created_at"
INDEXES = {  # filter -> (index, its partition attribute)
    "queue": ("by_queue", "queue"),
    "state": ("by_state", "state"),
    "type": ("by_type", "type"),
    "user_id": ("by_user", "s_user"),
    "article_id": ("by_article", "s_article"),
    "day": ("by_day", "s_day"),
    "word": ("by_word", "s_word"),
}
WORD_PREFIX = "word#"
WORD_TTL_SECONDS = 14 * 86400  # the longest a job is kept after its last change (records.TTL_SECONDS)
MAX_WORDS = 30  # words indexed per error
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]{1,39}")
_STOP = frozenset({"the", "and", "for", "was", "not", "with", "from", "has", "are", "this", "that"})


def record_fields(payload: dict[str, Any], user_id: str | None, created_at: str) -> dict[str, Any]:
    """The attributes a new job record carries for the indexes of its user, article and day
    (absent, not null, where there is none: an index key cannot be null)."""
    fields: dict[str, Any] = {"s_day": created_at[:10]}
    if user_id:
        fields["s_user"] = str(user_id)
    article = payload.get("article_id") if isinstance(payload, dict) else None
    if isinstance(article, str) and article:
        fields["s_article"] = article
    return fields


def words(text: str) -> list[str]:
    """The searchable words of a text, lower case, in order, each once (pure)."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group().strip("._-")
        if len(word) >= 3 and word not in _STOP:
            seen.setdefault(word, None)
    return list(seen)


def error_words(error: dict[str, Any] | None) -> list[str]:
    if not error:
        return []
    return words(f"{error.get('kind', '')} {error.get('message', '')}")[:MAX_WORDS]


def word_items(job_id: str, error: dict[str, Any] | None, now: float) -> list[dict[str, Any]]:
    """The `by_word` items of a failed attempt's error."""
    stamp = timeutil.iso_ms(now)
    ttl = timeutil.ttl_fields(now + WORD_TTL_SECONDS)
    return [
        {"id": f"{WORD_PREFIX}{word}#{job_id}", "s_word": word, "job_id": job_id, SORT: stamp, **ttl}
        for word in error_words(error)
    ]


def matches_words(job: dict[str, Any], wanted: list[str]) -> bool:
    """Does the job's current error have every word of `wanted`?"""
    have = set(error_words(job.get("error")))
    return all(word in have for word in wanted)
