"""The operators' job calls over REST, for Python (standard library only):

    jobs = JobsClient("http://127.0.0.1:8000", token)       # or token=rt.access_token's value, a callable
    for job in jobs.search(q="timed out", queue="articles"):  # every page, newest first
        print(job["id"], jobs.logs(job["id"])["items"])
    copy = jobs.duplicate(job_id)                              # the new job
    total = jobs.bulk("articles", "retry")                     # every call, the cursor followed

A failed call raises JobsApiError with the status and the answer's `Message`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

Send = Callable[[str, str, "dict[str, Any] | None", str], "tuple[int, Any]"]


class JobsApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("Message") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status}: {message or body}")
        self.status, self.body = status, body


class JobsClient:
    def __init__(self, api_url: str, token: str | Callable[[], str], *, send: Send | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token if callable(token) else (lambda: token)
        self._send = send or self._urlopen

    def page(self, **filters: Any) -> dict[str, Any]:
        """One page of `GET /api/jobs` (queue, state, type, user_id, article_id, q, since, until, limit, cursor)."""
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v not in (None, "")})
        return self._call("GET", f"/api/jobs?{query}" if query else "/api/jobs")

    def search(self, max_pages: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every job matching, newest first, following the cursor (at most `max_pages` pages)."""
        cursor = None
        for _ in range(max_pages):
            answer = self.page(**filters, cursor=cursor)
            yield from answer["items"]
            cursor = answer.get("next_cursor")
            if not cursor:
                return

    def logs(self, job_id: str) -> dict[str, Any]:
        """`{"items": [{"ts","run","attempt","level","message"}], "attempts": [...]}`."""
        return self._call("GET", f"/api/jobs/{urllib.parse.quote(job_id, safe='')}/logs")

    def duplicate(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/jobs/{urllib.parse.quote(job_id, safe='')}/duplicate", {})

    def bulk(
        self, queue: str, action: str, *, state: str | None = None, user_id: str | None = None, max_calls: int = 100
    ) -> dict[str, Any]:
        """Run a bulk action to its end: each call's bounded batch, following `next_cursor`.
        Returns the summed `matched` and `done`, the `calls` made and `more` (stopped at max_calls)."""
        total: dict[str, Any] = {"action": action, "matched": 0, "done": 0, "calls": 0, "more": False}
        cursor = None
        while total["calls"] < max_calls:
            body = {
                k: v for k, v in {"action": action, "state": state, "user_id": user_id, "cursor": cursor}.items() if v
            }
            answer = self._call("POST", f"/api/queues/{urllib.parse.quote(queue, safe='')}/bulk", body)
            total["matched"] += answer["matched"]
            total["done"] += answer["done"]
            total["calls"] += 1
            cursor = answer.get("next_cursor")
            if not cursor:
                return total
        total["more"] = True
        return total

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, answer = self._send(method, path, body, self._token())
        if not 200 <= status < 300:
            raise JobsApiError(status, answer)
        return answer

    def _urlopen(self, method: str, path: str, body: dict[str, Any] | None, token: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw or b"null")
            except ValueError:
                return exc.code, raw.decode(errors="replace")
