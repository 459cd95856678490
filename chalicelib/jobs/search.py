"""Job search (`GET /api/jobs`): every job still kept, newest created first, found through the
jobs table's search indexes (indexes.py), never a Scan.

- `q` that is a job id is one GetItem; other `q` is words of the error: the `by_word` index of
  its longest word, then the jobs themselves (one BatchGetItem a page), kept when their error
  still has every word and they pass the other filters.
- Otherwise one filter picks the index (the most selective given: article, user, type, state,
  queue), the others are a FilterExpression on it; `since`/`until` bound `created_at` in the key
  condition. With no filter it walks `by_day` from `until` back to `since` (default: the last
  15 days, a record untouched for 14 expires; at most 62 days back, one Query a day at most).
- A call reads at most MAX_READ index items: a page with filters that match little may come
  back short with a `next_cursor` (as DynamoDB's own pages do); follow it to read on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from chalicelib import catalog, errors, http, timeutil
from chalicelib.jobs import indexes
from chalicelib.jobs.records import STATES, JobStore, public

MAX_READ = 400
DAY_WALK_SECONDS = 15 * 86400
MAX_WALK_SECONDS = 62 * 86400  # the farthest back a walk goes, whatever `since` asks
MAX_TEXT = 200
ORDER = ("article_id", "user_id", "type", "state", "queue")  # the first given picks the index
ATTRIBUTE = {"queue": "queue", "state": "state", "type": "type", "user_id": "s_user", "article_id": "s_article"}
_ID = re.compile(r"^[0-9a-f]{32}$")


def search(params: dict[str, str], jobs: JobStore) -> dict[str, Any]:
    filters = _filters(params)
    limit = http.limit_param(params)
    now = timeutil.now()
    since = http.time_param(params, "since", 0.0)
    until = http.time_param(params, "until", now + 86400)
    if since > until:
        raise http.bad_request("must not be after `until`", "since")
    low, high = timeutil.iso_ms(since), timeutil.iso_ms(until)
    q = (params.get("q") or "").strip().lower()
    if _ID.match(q):
        record = jobs.get(q)
        found = [record] if record and _passes(record, filters, low, high) else []
        return {"items": [public(r) for r in found], "next_cursor": None}
    scope = json.dumps([sorted(filters.items()), q, params.get("since"), params.get("until")])
    if q:
        wanted = indexes.words(q)
        if not wanted:
            raise http.bad_request("must be a job id or words of at least 3 letters or digits", "q")
        word = max(wanted, key=len)
        plan = _Plan("word", [word], None, scope)
        return plan.run(jobs, params, limit, low, high, lambda r: indexes.matches_words(r, wanted), filters)
    key = next((name for name in ORDER if name in filters), None)
    if key is None:
        first = max(since, now - (MAX_WALK_SECONDS if params.get("since") else DAY_WALK_SECONDS))
        days = _days(first, min(until, now))
        return _Plan("day", days, None, scope).run(jobs, params, limit, low, high, None, {})
    rest = {name: value for name, value in filters.items() if name != key}
    condition = None
    for name, value in rest.items():
        clause = Attr(ATTRIBUTE[name]).eq(value)
        condition = clause if condition is None else condition & clause
    return _Plan(key, [filters[key]], condition, scope).run(jobs, params, limit, low, high, None, {})


class _Plan:
    """Query one index over one or more partitions (days: newest first), newest first."""

    def __init__(self, name: str, partitions: list[str], condition: Any, scope: str) -> None:
        self.index, self.pk = indexes.INDEXES[name]
        self.partitions, self.condition, self.scope = partitions, condition, f"{self.index}:{scope}"

    def run(
        self,
        jobs: JobStore,
        params: dict[str, str],
        limit: int,
        low: str,
        high: str,
        keep: Any,
        filters: dict[str, str],
    ) -> dict[str, Any]:
        keys = {self.pk, indexes.SORT, "id"}
        start = http.decode_cursor(params, keys, self.scope)
        partitions = self.partitions
        if start is not None:
            if start[self.pk] not in partitions:
                raise http.bad_request("is not a cursor this API returned", "cursor")
            partitions = partitions[partitions.index(start[self.pk]) :]
        found: list[dict[str, Any]] = []
        read = 0
        for value in partitions:
            while True:
                want = limit - len(found)
                size = want if self.condition is None and not filters else max(50, 2 * want)
                kwargs: dict[str, Any] = {
                    "IndexName": self.index,
                    "KeyConditionExpression": Key(self.pk).eq(value) & Key(indexes.SORT).between(low, high),
                    "ScanIndexForward": False,
                    "Limit": max(1, min(MAX_READ - read, size)),
                }
                if self.condition is not None:
                    kwargs["FilterExpression"] = self.condition
                if start is not None:
                    kwargs["ExclusiveStartKey"] = start
                result = jobs.table.query(**kwargs)
                read += int(result.get("ScannedCount", 0))
                items = result.get("Items", [])
                if self.pk == "s_word":
                    items = _jobs_of(jobs, items, keep, filters, low, high)
                for item in items:
                    found.append(item)
                    if len(found) == limit:
                        last = item.get("_key") or item
                        return self._page(found, {k: last[k] for k in keys})
                start = result.get("LastEvaluatedKey")
                if start is None:
                    break
                if read >= MAX_READ:
                    return self._page(found, start)
        return self._page(found, None)

    def _page(self, found: list[dict[str, Any]], last: dict[str, Any] | None) -> dict[str, Any]:
        return http.page([public(item) for item in found], last, self.scope)


def _jobs_of(
    jobs: JobStore, words: list[dict[str, Any]], keep: Any, filters: dict[str, str], low: str, high: str
) -> list[dict[str, Any]]:
    """The jobs the word items name, in their order (one BatchGetItem), that still match; each
    carries its word item's key (`_key`) for the cursor."""
    ids = list(dict.fromkeys(str(w["job_id"]) for w in words))
    if not ids:
        return []
    client = jobs.table.meta.client
    got: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {jobs.table.name: {"Keys": [{"id": i} for i in ids]}}
    while request:
        result = client.batch_get_item(RequestItems=request)  # plain values: the Table's client
        for raw in result.get("Responses", {}).get(jobs.table.name, []):
            got[raw["id"]] = raw
        request = result.get("UnprocessedKeys") or {}
    out = []
    for word in words:
        record = got.get(str(word["job_id"]))
        if record is not None and keep(record) and _passes(record, filters, "", "~"):
            out.append(
                {**record, "_key": {"s_word": word["s_word"], indexes.SORT: word[indexes.SORT], "id": word["id"]}}
            )
    return out


def _passes(record: dict[str, Any], filters: dict[str, str], low: str, high: str) -> bool:
    if record.get("id", "").startswith(("idem#", "rate#", indexes.WORD_PREFIX)):
        return False
    if not low <= str(record.get(indexes.SORT) or "") <= high:
        return False
    return all(record.get(ATTRIBUTE[name]) == value for name, value in filters.items())


def _filters(params: dict[str, str]) -> dict[str, str]:
    out = {name: params[name] for name in ORDER if params.get(name)}
    if "queue" in out and out["queue"] not in catalog.job_queues():
        raise errors.Invalid(f"must be one of {', '.join(catalog.job_queues())}", "queue")
    if "state" in out and out["state"] not in STATES:
        raise errors.Invalid(f"must be one of {', '.join(STATES)}", "state")
    for name, value in list(out.items()) + [("q", params.get("q") or "")]:
        if len(value) > MAX_TEXT:
            raise errors.Invalid(f"must be at most {MAX_TEXT} characters", name)
    return out


def _days(since: float, until: float) -> list[str]:
    """The UTC days from `until`'s back to `since`'s, newest first."""
    out: list[str] = []
    day = until
    while day >= since - 86400:
        name = timeutil.day(day)
        if not out or out[-1] != name:
            out.append(name)
        day -= 86400
    return [d for d in out if d >= timeutil.day(since)]
