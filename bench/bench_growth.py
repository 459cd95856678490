"""Costs as data grows: every read path at 1,000 and at 100,000 items each of audit events, job
records, analytics events and WebSocket events (contract line:
`growth <path>: <items read at 1k> -> <items read at 100k> (<ratio>x)`).

Each size gets a fresh moto in-process, filled with the items the real write paths build
(`audit.model.build` + `place`, `JobStore.new_record`, `analytics.event_item`, the event log's
envelopes), put straight into moto's backend through its public model API (`put_item`): going
through boto3 and moto's HTTP layer costs ~10x the time and measures nothing here. Spread: audit
and analytics events over the last 30 days (5% older, expired, for the sweeps), jobs over four
queues (retention keeps 100 completed, 50 failed and 100 cancelled per queue, 10% expired
cancelled while under that; the rest waiting and delayed), WebSocket events in 25 rooms, the admin room holding half.

Counted per path, by botocore hooks on the app's session: AWS requests, and items read (the
ScannedCount of Query and Scan, the items returned by GetItem, BatchGetItem and
TransactGetItems: moto reports no ConsumedCapacity). Time is moto's (every moto Query walks the
whole table: times grow with the table even where reads do not), shown for scale only.
`INKWELL_BENCH_GROWTH=1000,100000` picks the sizes; `INKWELL_BENCH_GROWTH_PATHS=report,verify`
measures only the paths whose name contains one of those words (the fill, the seal and the count always run).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

DAY = 86400
SIZES = tuple(int(n) for n in os.environ.get("INKWELL_BENCH_GROWTH", "1000,100000").split(","))
ONLY = [w for w in os.environ.get("INKWELL_BENCH_GROWTH_PATHS", "").split(",") if w]
HOT = ("article", "a-busy")  # every 10th audit event's resource: more than a page of events at 1k too
USERS = 20
ARTICLES = 500
ROOMS = 25
AUDIT_ACTIONS = (
    "article.status_changed",
    "job.completed",
    "content.generated",
    "realtime.connect",
    "article.create",
    "auth.login",
    "auth.login_failed",
    "settings.update",
    "article.generation_failed",
    "content.webhook_call",
)


class _Context:
    """A processor's JobContext, enough for the sweeps and reports: a Lambda of 900 s."""

    def __init__(self, seconds: float = 900.0) -> None:
        self.deadline = time.monotonic() + seconds
        self.job: dict[str, Any] = {"progress": 0}

    def time_left(self) -> float:
        return self.deadline - time.monotonic() - 5

    def check_deadline(self, needed: float = 0.0) -> None:
        if self.time_left() <= needed:
            raise RuntimeError("past the deadline")

    def progress(self, percent: int) -> None:
        pass


def _environment() -> None:
    os.environ.update(
        {
            "INKWELL_STAGE": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "JWT_SECRET": "bench-jwt-secret-" + "0" * 48,
            "WEBHOOK_SECRET": "bench-webhook-secret",
            "AUDIT_DIGEST_KEY": "bench-audit-digest-key",
            "INKWELL_SCRYPT_N": "1024",
        }
    )
    for key in ("INKWELL_AWS_ENDPOINT", "INKWELL_SECRETS_PREFIX", "ARTICLE_WEBHOOK_URL"):
        os.environ.pop(key, None)


class Filler:
    """Puts items into moto's backend as DynamoDB would store them."""

    def __init__(self) -> None:
        from boto3.dynamodb.types import TypeSerializer
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from chalicelib import config

        self._backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        self._serialize = TypeSerializer().serialize
        self._name = config.get().resource_name

    def put(self, table: str, items: list[dict[str, Any]]) -> None:
        from chalicelib.util import to_dynamo

        name = self._name(table)
        for item in items:
            plain = to_dynamo({k: v for k, v in item.items() if v is not None})
            self._backend.put_item(name, {k: self._serialize(v) for k, v in plain.items()})


def _times(n: int, now: float) -> list[tuple[float, bool]]:
    """n (time, expired) over the last 30 days, every 20th 95 days back (past a 90-day TTL)."""
    return [((now - 95 * DAY - i) if i % 20 == 19 else now - 30 * DAY * (i + 0.5) / n, i % 20 == 19) for i in range(n)]


def audit_items(n: int, now: float) -> list[dict[str, Any]]:
    from chalicelib import config, secret
    from chalicelib.audit import model
    from chalicelib.audit.actions import classify

    key = secret.get(config.AUDIT_DIGEST_KEY)
    out = []
    for i, (at, _) in enumerate(_times(n, now)):
        action = AUDIT_ACTIONS[i % len(AUDIT_ACTIONS)]
        details: dict[str, Any] = {"n": i}
        if action == "auth.login_failed":
            details["email"] = f"user{i % 7}@example.com"
        item = model.build(
            action,
            classify(action),
            user_id=f"u-{i % USERS}",
            user_email=f"u{i % USERS}@example.com",
            ip=f"10.0.{i % 5}.{i % 11}",
            user_agent="bench",
            request_id=f"r-{i}",
            resource=HOT if i % 10 == 0 else ("article", f"a{i % ARTICLES}"),
            details=details,
            now=at,
        )
        out.append(model.place(item, at, at, key))
    return out


def analytics_items(n: int, now: float) -> list[dict[str, Any]]:
    """The events, and the per-day counts that `AnalyticsEvents.record` adds up with each."""
    from chalicelib.content import analytics

    types = analytics.EVENT_TYPES
    events = [
        analytics.event_item(f"a{i % ARTICLES}", types[i % 3], f"u-{i % USERS}", at)
        for i, (at, _) in enumerate(_times(n, now))
    ]
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        update = analytics.day_count_update(event)
        key = (update["Key"]["day"], update["Key"]["sk"])
        item = counts.setdefault(key, {"day": key[0], "sk": key[1], "ttl": event["ttl"]})
        item["expiry_day"] = event["expiry_day"]
        field = update["ExpressionAttributeNames"]["#c"]
        item[field] = item.get(field, 0) + 1
    return events + list(counts.values())


KEEP = {"completed": 100, "failed": 50, "cancelled": 100}  # retention per queue (`catalog.Queue.keep_*`)


def job_items(n: int, now: float) -> list[dict[str, Any]]:
    """What retention keeps per queue (steady state: full at every size, 1,000 records here), every
    10th of those past its TTL (waiting for DynamoDB or the orphan sweep), then n jobs waiting
    or delayed. Each caused by one of USERS users; every 5th article job for the HOT article; the
    failed ones with an error and its search word items (every delayed one too: a backoff's)."""
    from chalicelib import catalog
    from chalicelib.jobs import records

    store = records.JobStore(None)
    queues = catalog.job_queues()
    out = []
    i = 0
    for queue in queues:
        for state, keep in KEEP.items():
            for k in range(keep):
                at = now - 9 * DAY if k % 10 == 9 else now - 6 * DAY * (k + 0.5) / keep
                out += _job(store, queue, state, at, {"kept": k}, i)
                i += 1
    for j in range(n):
        queue = queues[j % len(queues)]
        out += _job(store, queue, ("waiting", "delayed")[j % 2], now - 6 * DAY * (j + 0.5) / n, {"n": j}, i)
        i += 1
    return out


ERROR = {"message": "the webhook timed out after 30 s", "kind": "webhook_timeout"}


def _job(store: Any, queue: str, state: str, at: float, payload: dict[str, Any], i: int) -> list[dict[str, Any]]:
    from chalicelib import catalog, timeutil
    from chalicelib.jobs import indexes, records

    if queue == "articles":
        payload = {**payload, "article_id": HOT[1] if i % 5 == 0 else f"a{i % ARTICLES}"}
    job_type = catalog.queue(queue).job_types[0]
    record = store.new_record(queue, job_type, payload, max_attempts=3, user_id=f"u-{i % USERS}")
    stamp = timeutil.iso_ms(at)
    record.update(
        state=state,
        queue_state=f"{queue}#{state}",
        created_at=stamp,
        updated_at=stamp,
        s_day=stamp[:10],
        **records.ttl_for(state, at),
    )
    if state in ("failed", "delayed"):
        record["error"] = ERROR
        return [dict(record), *indexes.word_items(record["id"], ERROR, at)]
    return [dict(record)]


def ws_items(n: int, now: float) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Envelopes of n events (half in the admin room); every 20th of each room's first ones is
    older than the event log keeps (expired, waiting for TTL). Also the rooms' counters."""
    from chalicelib import timeutil
    from chalicelib.realtime import store

    seqs: Counter[str] = Counter()
    out = []
    for i in range(n):
        room = "admin" if i % 2 == 0 else f"article:a{i % ROOMS}"
        seqs[room] += 1
        seq = seqs[room]
        at = now - 26 * 3600 if i < n // 20 else now - 24 * 3600 * (n - i) / n
        body = json.dumps({"type": "activity", "room": room, "seq": seq, "data": {"n": i}})
        out.append({"room": room, "seq": seq, "body": body, **timeutil.ttl_fields(at + store.EVENT_RETENTION_SECONDS)})
    counters = [
        {"room": room, "seq": store.COUNTER_SEQ, "last": last, "members": 1, **timeutil.ttl_fields(now + 30 * DAY)}
        for room, last in seqs.items()
    ]
    return out + counters, dict(seqs)


def speed_up_moto() -> None:
    """moto answers a base-table Query by sorting every item of the table (`all_items`), and a
    GSI Query by walking them all: at 100,000 items a query costs ~1 s, and the bench hours.
    Here a base-table Query looks at its partition only, and the sorted list of all items is kept
    until the table's next put or delete (items updated in place stay the same objects). Only
    moto's speed changes: what a Query returns, and its ScannedCount, are the same."""
    from moto.dynamodb.models.table import Table

    query, all_items, put_item, delete_item = Table.query, Table.all_items, Table.put_item, Table.delete_item

    def fast_all_items(self: Any) -> list[Any]:
        only = getattr(self, "_bench_partition", None)
        if only is not None:
            part = self.items.get(only)
            return [] if part is None else (list(part.values()) if self.range_key_attr else [part])
        cached = getattr(self, "_bench_all", None)
        if cached is None:
            cached = self._bench_all = all_items(self)
        return list(cached)

    def fast_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        self._bench_partition = hash_key if index_name is None else None
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            self._bench_partition = None

    def changing(method: Callable[..., Any]) -> Callable[..., Any]:
        def changed(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._bench_all = None
            return method(self, *args, **kwargs)

        return changed

    # A transaction deep-copies each table it touches first (to roll back): the digest table, once
    # per sealed hour. The bench's transactions all succeed; no copy of a whole table, then.
    import copy
    import types

    from moto.dynamodb import models

    models.copy = types.SimpleNamespace(  # type: ignore[attr-defined]
        deepcopy=lambda obj, memo=None: obj if isinstance(obj, Table) else copy.deepcopy(obj, memo), copy=copy.copy
    )
    Table.all_items = fast_all_items  # type: ignore[method-assign]
    Table.query = fast_query  # type: ignore[method-assign]
    Table.put_item = changing(put_item)  # type: ignore[method-assign]
    Table.delete_item = changing(delete_item)  # type: ignore[method-assign]


class Meter:
    """Requests and items read by the app's boto3 clients, while on."""

    def __init__(self) -> None:
        from chalicelib import aws

        self.on = False
        self.requests: Counter[str] = Counter()
        self.read = 0
        aws.session().events.register("before-call", self._before)
        aws.session().events.register("after-call", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        if self.on:
            self.requests[f"{model.service_model.service_name}.{model.name}"] += 1

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.on or model.service_model.service_name != "dynamodb":
            return
        if "ScannedCount" in parsed:
            self.read += int(parsed["ScannedCount"])
        elif model.name == "GetItem":
            self.read += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            self.read += sum(len(v) for v in (parsed.get("Responses") or {}).values())
        elif model.name == "TransactGetItems":
            self.read += len(parsed.get("Responses") or [])

    def measure(self, fn: Callable[[], Any]) -> tuple[int, int, float, Any]:
        self.requests.clear()
        self.read = 0
        self.on = True
        start = time.perf_counter()
        try:
            result = fn()
        finally:
            self.on = False
        return self.read, sum(self.requests.values()), time.perf_counter() - start, result


def until_done(meter: Meter, step: Callable[[], dict[str, Any]]) -> tuple[int, int, float, int]:
    """Run a job step that says `more` until it says no more: items read, requests and seconds
    in all, and how many runs it took."""
    read, requests, seconds, runs = 0, 0, 0.0, 0
    while True:
        runs += 1
        r, q, t, result = meter.measure(step)
        read, requests, seconds = read + r, requests + q, seconds + t
        if not result["more"]:
            return read, requests, seconds, runs


def run(n: int) -> dict[str, tuple[int, int, float, str]]:
    """Fill a fresh moto with n items of each kind and measure every path."""
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import aws, config, runtime, timeutil
    from infra import provision

    config.reset()
    aws.reset()
    out: dict[str, tuple[int, int, float, str]] = {}
    with mock_aws():
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        meter = Meter()
        import app as app_module
        from chalicelib.audit import chain, seal_jobs, sealer, tally
        from chalicelib.audit import jobs as audit_jobs
        from chalicelib.auth import service as auth
        from chalicelib.auth import sweeps
        from chalicelib.content import cleanup
        from chalicelib.content import report_jobs as analytics_jobs
        from chalicelib.realtime import handlers, live

        now = timeutil.now()
        filler = Filler()
        start = time.perf_counter()
        filler.put("audit_events", audit_items(n, now))
        filler.put("jobs", job_items(n, now))
        filler.put("analytics_events", analytics_items(n, now))
        ws, seqs = ws_items(n, now)
        filler.put("ws_events", ws)
        filler.put("articles", [{"id": f"a{i}", "kind": "article", "status": "DRAFT"} for i in range(ARTICLES - 10)])
        print(f"   filled {n:,} items of each kind in {time.perf_counter() - start:.1f} s", flush=True)

        day = (datetime.fromtimestamp(now, UTC) - timedelta(days=1)).date()

        with Client(app_module.app, stage_name="test") as client:

            def get(path: str) -> Callable[[], Any]:
                def call() -> Any:
                    response = client.http.get(path, headers=headers)
                    assert response.status_code in (200, 503), (path, response.status_code, response.body)
                    return json.loads(response.body)

                return call

            def job(fn: Callable[..., Any], payload: dict[str, Any] | None = None) -> Callable[[], Any]:
                def call() -> Any:
                    ctx = _Context()
                    queue = "analytics" if fn.__module__.endswith(".analytics") else "cleanup"
                    record = {"id": f"bench-{fn.__name__}", "queue": queue, "type": fn.__name__}
                    inv = runtime.Invocation(kind="sqs", request_id="bench")
                    return app_module.middleware.run(inv, lambda: fn({**record, "payload": payload or {}}, ctx))

                return call

            def resume(after: int) -> Callable[[], Any]:
                frame = json.dumps({"action": "resume", "room": "admin", "after": after})
                return lambda: list(handlers.answer(conn_id, frame))

            # The trail sealed as in steady state: every hour up to an hour ago has its digest and
            # counts (a first seal reaches back 48 h; here the whole 31 days, in follow-up runs).
            chain.GENESIS_HOURS = 31 * 24
            read, requests, seconds, runs = until_done(meter, lambda: sealer.seal(now - 3600))
            out["audit_digest backlog: 31 days"] = (read, requests, seconds, f"{runs} runs")
            print(f"   sealed 31 days: {read} read, {requests} requests, {seconds:.1f} s, {runs} runs", flush=True)
            # and counted, as the 5-minute count would have: from the chain's genesis (in follow-up
            # runs), then its last run 5 minutes before now (the clock moved on while counting)
            read, requests, seconds, runs = until_done(meter, lambda: tally.count(now - 300))
            out["audit_tally backlog: 31 days"] = (read, requests, seconds, f"{runs} runs")
            print(f"   counted 31 days: {read} read, {requests} requests, {seconds:.1f} s, {runs} runs", flush=True)
            tally.count(timeutil.now() - 300)
            # Signed in once the trail is sealed and counted: a long setup outlives a token.
            admin = auth.create_user("bench-admin@example.com", "bench password, long enough", "admin")
            token = auth.login(admin["email"], "bench password, long enough", None)["token"]
            headers = {"authorization": f"Bearer {token}"}
            conn_id = "bench-conn"
            # The admin's session (its jti): each frame checks that it still stands.
            live.connections().open(conn_id, auth.authenticate_token(token), ["admin"], None)

            since30 = timeutil.iso(now - 30 * DAY)
            paths: list[tuple[str, Callable[[], Any]]] = [
                ("GET /api/queues/stats", get("/api/queues/stats")),
                ("GET /api/queues/articles/jobs?state=waiting", get("/api/queues/articles/jobs?state=waiting")),
                ("GET /api/queues/articles/jobs?state=completed", get("/api/queues/articles/jobs?state=completed")),
                ("GET /api/queues/articles/jobs?state=cancelled", get("/api/queues/articles/jobs?state=cancelled")),
                ("GET /api/jobs", get("/api/jobs")),
                ("GET /api/jobs?queue=articles", get("/api/jobs?queue=articles")),
                ("GET /api/jobs?state=failed", get("/api/jobs?state=failed")),
                ("GET /api/jobs?type=generate", get("/api/jobs?type=generate")),
                ("GET /api/jobs?user_id=u-3", get("/api/jobs?user_id=u-3")),
                ("GET /api/jobs?article_id=a-busy", get("/api/jobs?article_id=a-busy")),
                ("GET /api/jobs?q=<error words>", get("/api/jobs?q=webhook%20timed")),
                ("GET /api/jobs?since=<a day ago>", get(f"/api/jobs?since={timeutil.iso(now - DAY)}")),
                ("GET /api/jobs?queue=articles&state=failed", get("/api/jobs?queue=articles&state=failed")),
                ("GET /api/audit", get("/api/audit")),
                ("GET /api/audit?user_id=u-3", get("/api/audit?user_id=u-3")),
                ("GET /api/audit?action=auth.login", get("/api/audit?action=auth.login")),
                ("GET /api/audit?category=system", get("/api/audit?category=system")),
                ("GET /api/audit?resource=article#a-busy", get("/api/audit?resource_type=article&resource_id=a-busy")),
                ("GET /api/audit/users/u-3/summary?days=7", get("/api/audit/users/u-3/summary?days=7")),
                ("GET /api/audit/users/u-3/summary?days=365", get("/api/audit/users/u-3/summary?days=365")),
                ("GET /api/audit/report (24 h)", get("/api/audit/report")),
                ("GET /api/audit/report (30 days)", get(f"/api/audit/report?since={since30}")),
                ("GET /api/audit/verify (24 h)", get("/api/audit/verify")),
                ("cleanup/audit_tally (every 5 minutes)", job(seal_jobs.audit_tally)),
                ("cleanup/audit_digest (hourly: the last hour)", job(seal_jobs.audit_digest)),
                ("analytics/daily_report", job(analytics_jobs.daily_report, {"date": day.isoformat()})),
                ("analytics/weekly_report", job(analytics_jobs.weekly_report, {"week": timeutil.iso_week(day)})),
                ("GET /api/analytics/reports/daily", get(f"/api/analytics/reports/daily?date={day.isoformat()}")),
                ("resume admin room (last 100)", resume(seqs["admin"] - 100)),
                ("resume admin room (from 0)", resume(0)),
                ("cleanup/sessions", job(sweeps.sessions)),
                ("cleanup/login_attempts", job(sweeps.login_attempts)),
                ("cleanup/webhook_logs", job(cleanup.webhook_logs)),
                ("cleanup/activity_logs", job(audit_jobs.activity_logs)),
                ("analytics/cleanup_old_data", job(analytics_jobs.cleanup_old_data)),
                ("cleanup/orphans", job(cleanup.orphans)),
            ]
            from chalicelib.content import reports

            for name, fn in paths:
                if ONLY and not any(word in name for word in ONLY):
                    continue
                read, requests, seconds, result = meter.measure(fn)
                note = ""
                if isinstance(result, dict) and "more" in result:
                    note = f"more={result['more']}"
                if isinstance(result, dict) and "complete" in result:
                    note = f"checked {result['checked']}, complete={result['complete']}"
                if isinstance(result, dict) and str(result.get("key", "")).startswith("analytics."):
                    note = f"answer: {reports.stored(result['key'])['article_count']} articles"
                out[name] = (read, requests, seconds, note)
                print(f"   {name}: {read} read, {requests} requests, {seconds * 1000:.0f} ms {note}", flush=True)
    return out


def main() -> None:
    _environment()
    speed_up_moto()
    results = {}
    for n in SIZES:
        print(f"-- {n:,} items of each kind", flush=True)
        results[n] = run(n)
    small, large = results[SIZES[0]], results[SIZES[-1]]
    print()
    for name in small:
        if " backlog: " in name:
            continue  # a sweep over everything, shown in the table
        a, b = small[name][0], large[name][0]
        ratio = b / a if a else (1.0 if b == 0 else float("inf"))
        print(f"growth {name}: {a} -> {b} ({ratio:.2f}x)")
    print()
    print("| path | items read at 1k | at 100k | ratio | requests 1k / 100k | ms 1k / 100k (moto) | note 1k / 100k |")
    print("|---|---|---|---|---|---|---|")
    for name in small:
        a, b = small[name], large[name]
        ratio = b[0] / a[0] if a[0] else (1.0 if b[0] == 0 else float("inf"))
        cells = f"{a[1]} / {b[1]} | {a[2] * 1000:.0f} / {b[2] * 1000:.0f} | {a[3]} / {b[3]}"
        print(f"| {name} | {a[0]} | {b[0]} | {ratio:.2f}x | {cells} |")


if __name__ == "__main__":
    main()
