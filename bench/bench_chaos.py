"""Chaos: article generations, WebSocket subscribers, analytics events and audited actions through
the local stack while AWS fails underneath (the control server's `/faults`, docs/local-stack.md).

The stack runs in a subprocess (the real app) with MIX: about 5 % of the app's DynamoDB, SQS, SES
and management-API calls throttled, failing with a 500, losing their answer after being applied
or slowed; duplicate deliveries, lost deletes, killed invocations and invocations past their
timeout in the SQS poller; and an outage of DynamoDB or SQS (OUTAGE_SECONDS) every
OUTAGE_EVERY seconds. The articles queue's visibility timeout is cut to VISIBILITY seconds so that
what a kill leaves comes back within the run (on AWS it is 6x the function's timeout).

An editor creates N articles and asks to generate each while two editor connections and an
admin connection listen, and readers post analytics events. Clients do what the contract asks
of them: a 503 is retried after its Retry-After; other answers are taken as they are. When every
article is done (PUBLISHED, or rolled back with its job failed) or the deadline passes, the
faults are removed and, after a short settling time, the invariants are counted and printed, one
line each (all must be 0):
- jobs lost: a generation answered 202 whose job is unknown, or whose job ended without its
  article PUBLISHED (completed) or rolled back (failed); or one refused (a 409, a 5xx) that left
  its article neither DRAFT nor PUBLISHED (nothing will finish it, and asking again is refused);
- jobs stuck: a job still pending or running at the end (its article PUBLISHED or not);
- generated twice: more than one successful generator call for an article;
- announced twice / not at all: `article.status` PUBLISHED events (distinct seqs) in the
  author's room, read back with `resume` from seq 0, for each PUBLISHED article;
- audit events lost / duplicated: per article, `article.create` and `article.generate` once each
  (when answered 201 / 202) and one `article.status_changed` to PUBLISHED when published;
- analytics events lost / counted twice: the article's running counts against the 202s (an
  event finally answered 5xx may have been counted); each event carries an `Idempotency-Key`,
  so a 503 retried after its count was applied counts once;
- room seqs repeated / out of order: two different events with one seq, or a seq lower than one
  already heard, on a connection (live frames), or in a room's log read back;
- 5xx answers: HTTP answers >= 500 other than 503 to the bench's requests (a 503 with
  Retry-After is the contract's clean degradation: retried, and counted on a line of its own),
  and WebSocket error frames other than `code: unavailable` (counted with the 503s).

`python -m bench chaos [--jobs N] [--seed S] [--log FILE]` (100 jobs by default; FILE keeps the
stack's log, whose `FAULT` lines name each fault injected).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

JOBS = 100
RETRIES = 5  # a 503 is asked again this many times at most, after its Retry-After
SEED = 29
VISIBILITY = 20  # seconds, the articles queue's visibility timeout for the run
OUTAGE_EVERY = 20.0  # seconds between outages
OUTAGE_SECONDS = 2.0
EVENTS_PER_ARTICLE = 3
SETTLE = 15.0  # seconds after the faults are removed before counting
MIX: list[dict[str, Any]] = [
    {"kind": "error", "service": "dynamodb", "error": "throttle", "rate": 0.02},
    {"kind": "error", "service": "dynamodb", "error": "internal", "rate": 0.005},
    {"kind": "lost_answer", "service": "dynamodb", "rate": 0.01},
    {"kind": "latency", "service": "dynamodb", "seconds": 0.2, "rate": 0.01},
    {"kind": "error", "service": "sqs", "error": "throttle", "rate": 0.01},
    {"kind": "error", "service": "sqs", "error": "internal", "rate": 0.005},
    {"kind": "lost_answer", "service": "sqs", "rate": 0.01},
    {"kind": "error", "service": "ses", "rate": 0.03},
    {"kind": "lost_answer", "service": "ses", "rate": 0.02},
    {"kind": "error", "service": "apigatewaymanagementapi", "rate": 0.02},
    {"kind": "lost_answer", "service": "apigatewaymanagementapi", "rate": 0.02},
    {"kind": "duplicate_delivery", "rate": 0.05},
    {"kind": "lost_delete", "rate": 0.03},
    {"kind": "kill_invocation", "rate": 0.03, "within": 30},
    {"kind": "overrun_timeout", "rate": 0.02, "seconds": 2, "within": 30},
]
INVARIANTS = (
    "jobs lost",
    "jobs stuck",
    "generated twice",
    "announced twice",
    "announced not at all",
    "audit events lost",
    "audit events duplicated",
    "analytics events lost",
    "analytics events counted twice",
    "room seqs repeated",
    "room seqs out of order",
    "5xx answers",
)


class Client:
    """The stack's HTTP API as a client following the contract: a 503 is retried after its
    Retry-After (up to RETRIES times). A 503 is the contract's clean degradation, counted apart
    (`unavailable`); every other answer >= 500 (and a reset or a timeout, as 599) is a server error."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.server_errors: collections.Counter[str] = collections.Counter()
        self.unavailable: collections.Counter[str] = collections.Counter()  # 503s heard
        self.gave_up: collections.Counter[str] = collections.Counter()  # still 503 after RETRIES
        self._lock = threading.Lock()

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, key: str | None = None
    ) -> tuple[int, Any]:
        """`key`: the call's Idempotency-Key, the same for each of its retries."""
        extra = {"headers": {"Idempotency-Key": key}} if key else {}
        for _ in range(RETRIES + 1):
            try:
                status, answer, headers = self.stack.request(method, path, body, token=token, **extra)
            except OSError as exc:  # a reset or a timeout: as bad as a 500
                status, answer, headers = 599, repr(exc), {}
            what = f"{method} {_shape(path)} {status}"
            if status != 503:
                if status >= 500:
                    with self._lock:
                        self.server_errors[what] += 1
                return status, answer
            with self._lock:
                self.unavailable[what] += 1
            time.sleep(min(5.0, float(headers.get("retry-after") or 1)))
        with self._lock:
            self.gave_up[what] += 1
        return status, answer


def _shape(path: str) -> str:
    parts = path.split("?")[0].split("/")
    return "/".join("{id}" if len(p) > 20 else p for p in parts)


class Subscriber(threading.Thread):
    """One WebSocket connection that records every frame (by room), then reads rooms back."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        from websockets.sync.client import connect

        self.ws = connect(url, open_timeout=30, max_size=2**22)
        self.frames: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.replies: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self._stopping = threading.Event()
        self._resumed: dict[str, threading.Event] = {}
        self.rooms: dict[str, int] = {}

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                raw = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:
                return
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "error" or ("message" in frame and "type" not in frame):
                self.errors.append(frame)
            elif kind == "rooms":
                self.rooms = dict(frame.get("rooms") or {})
            elif kind == "resumed":
                self.replies[frame["room"]].append(frame)
                self._resumed[frame["room"]].set()
            elif isinstance(frame.get("seq"), int) and frame.get("room"):
                if frame["room"] in self._resumed and not self._resumed[frame["room"]].is_set():
                    self.replies[frame["room"]].append(frame)
                else:
                    self.frames.append(frame)

    def ask_rooms(self) -> None:
        self.ws.send(json.dumps({"action": "rooms"}))

    def read_back(self, room: str) -> list[dict[str, Any]]:
        """Every kept event of `room` (resume from 0, page after page), as the server lists them."""
        after, events = 0, []
        for _ in range(50):
            self._resumed[room] = threading.Event()
            self.replies[room] = []
            self.ws.send(json.dumps({"action": "resume", "room": room, "after": after}))
            if not self._resumed[room].wait(30):
                raise RuntimeError(f"no resumed for {room}")
            page = self.replies[room]
            events += [f for f in page if f.get("type") != "resumed"]
            end = page[-1]
            if end.get("complete", True) or end.get("next_after") is None:
                break
            after = int(end["next_after"])
        del self._resumed[room]
        return events

    def close(self) -> None:
        self._stopping.set()
        self.join(2)
        self.ws.close()


def seq_problems(frames: list[dict[str, Any]]) -> tuple[list[str], int]:
    """(repeated, out of order) seqs per room in the order heard: one seq with two different
    events (each named); a seq lower than one already heard (a copy of the same frame is neither)."""
    seen: dict[tuple[str, int], str] = {}
    highest: dict[str, int] = {}
    repeated: list[str] = []
    disorder = 0
    for frame in frames:
        room, seq = frame["room"], frame["seq"]
        body = json.dumps({k: frame.get(k) for k in ("type", "data")}, sort_keys=True)
        earlier = seen.get((room, seq))
        if earlier is not None:
            if earlier != body:
                repeated.append(f"{room} seq {seq}: {earlier[:160]} / {body[:160]}")
            continue
        seen[(room, seq)] = body
        if seq < highest.get(room, 0):
            disorder += 1
        highest[room] = max(highest.get(room, 0), seq)
    return repeated, disorder


def run(jobs: int, seed: int) -> dict[str, Any]:
    from tests.e2e.conftest import start_stack, stop_stack

    with tempfile.TemporaryDirectory() as tmp:
        process, stack = start_stack(
            Path(tmp), INKWELL_LOCAL_APP="app:app", INKWELL_GENERATOR_DELAY="0.05", INKWELL_LOG_LEVEL="WARNING"
        )
        try:
            result = _chaos(stack, jobs, seed)
            result["log"] = stack.log.read_text(errors="replace")
            return result
        except BaseException:
            print(stack.log_tail(80), file=sys.stderr)
            raise
        finally:
            stop_stack(process)


def _ok(answer: tuple[int, Any], *expected: int) -> Any:
    status, body = answer
    if status not in expected:
        raise AssertionError(f"HTTP {status}: {body}")
    return body


def _chaos(stack: Any, jobs: int, seed: int) -> dict[str, Any]:
    client = Client(stack)
    admin = stack.login()
    people = {
        "editor": ("chaos-editor@example.com", "chaos-password-1"),
        "viewer": ("chaos-reader@example.com", "chaos-password-2"),
    }
    for role, (email, password) in people.items():
        _ok(client.call("POST", "/api/users", {"email": email, "password": password, "role": role}, admin), 201)
    editor, reader = (stack.login(*people[role]) for role in ("editor", "viewer"))
    sqs = stack.aws("sqs")
    sqs.set_queue_attributes(QueueUrl=stack.queue_url("articles"), Attributes={"VisibilityTimeout": str(VISIBILITY)})
    _ok(stack.control("POST", "/generator/load", {"failure_rate": 0, "seed": seed})[:2], 204)

    def subscriber(token: str, name: str) -> Subscriber:
        ticket = _ok(client.call("POST", "/api/realtime/ticket", token=token), 200)["ticket"]
        sub = Subscriber(stack.ws(ticket=ticket), name)
        sub.start()
        sub.ask_rooms()
        return sub

    subs = [subscriber(editor, "editor-1"), subscriber(editor, "editor-2"), subscriber(admin, "admin")]
    _ok(stack.control("POST", "/faults", {"seed": seed, "rules": MIX})[:2], 201)
    stop_outages = threading.Event()
    outages = threading.Thread(target=_outages, args=(stack, stop_outages, seed), daemon=True)
    outages.start()

    created: dict[str, int] = {}
    generated: dict[str, str] = {}
    asked: collections.Counter[int] = collections.Counter()
    refused: dict[str, int] = {}  # article -> the answer to its generate, when not 202
    events_sent: collections.Counter[tuple[str, str]] = collections.Counter()
    events_failed: collections.Counter[str] = collections.Counter()
    rng = random.Random(seed)

    def create(i: int) -> None:
        body = {"title": f"chaos {i}", "topic": f"topic {i}", "keywords": ["chaos"]}
        status, answer = client.call("POST", "/api/articles", body, editor)
        if status == 201:
            created[answer["id"]] = i

    def generate(article_id: str) -> None:
        status, answer = client.call("POST", f"/api/articles/{article_id}/generate", token=editor)
        asked[status] += 1
        if status != 202:
            refused[article_id] = status
        if status == 202:
            generated[article_id] = answer["job_id"]

    def analytics(article_id: str) -> None:
        kinds = rng.sample(["view", "click", "share"] * EVENTS_PER_ARTICLE, EVENTS_PER_ARTICLE)
        for n, kind in enumerate(kinds):
            event = {"article_id": article_id, "type": kind}
            status, _ = client.call("POST", "/api/analytics/events", event, reader, key=f"{article_id}-{n}")
            if status == 202:
                events_sent[(article_id, kind)] += 1
            if status >= 500:  # answered 5xx at last: it may have been counted
                events_failed[article_id] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(jobs)))
        ids = sorted(created)
        list(pool.map(generate, ids))
        list(pool.map(analytics, ids))
    deadline = time.monotonic() + 120 + VISIBILITY * 4 + jobs * 0.5
    done: dict[str, str] = {}
    while time.monotonic() < deadline and len(done) < len(generated):
        time.sleep(2)
        for status in ("PUBLISHED", "DRAFT"):
            code, page = client.call("GET", f"/api/articles?status={status}&limit=100", token=editor)
            cursor_pages = 0
            while code == 200 and cursor_pages < 20:
                for article in page["items"]:
                    job_id = generated.get(article["id"])
                    if job_id and article["id"] not in done and _ended(client, admin, job_id, status):
                        done[article["id"]] = status
                if not page.get("next_cursor"):
                    break
                cursor_pages += 1
                code, page = client.call(
                    "GET", f"/api/articles?status={status}&limit=100&cursor={page['next_cursor']}", token=editor
                )
    elapsed = time.monotonic() - started
    stop_outages.set()
    outages.join()
    faults = _ok(stack.control("GET", "/faults")[:2], 200)
    _ok(stack.control("DELETE", "/faults")[:2], 204)
    time.sleep(SETTLE)
    result = _count(stack, client, admin, editor, subs, created, generated, done, events_sent, events_failed)
    for article_id, answered in refused.items():  # refused, so the client may ask again: unless left mid-way
        article = client.call("GET", f"/api/articles/{article_id}", token=editor)[1]
        if article.get("status") not in ("DRAFT", "PUBLISHED"):
            result["counts"]["jobs lost"] += 1
            result["examples"].setdefault("jobs lost", []).append(
                f"{article_id}: generate answered {answered}, the article left {article.get('status')}"
            )
    for sub in subs:
        sub.close()
    result.update(
        elapsed=elapsed, jobs=len(generated), asked=dict(asked), created=len(created), injected=faults["injected"]
    )
    return result


def _ended(client: Client, admin: str, job_id: str, article_status: str) -> bool:
    """The article's job has ended as its status says: completed for PUBLISHED, failed for DRAFT."""
    status, job = client.call("GET", f"/api/jobs/{job_id}", token=admin)
    return status == 200 and job["state"] == ("completed" if article_status == "PUBLISHED" else "failed")


def _outages(stack: Any, stop: threading.Event, seed: int) -> None:
    services = ["dynamodb", "sqs"]
    n = 0
    while not stop.wait(OUTAGE_EVERY):
        service = services[n % len(services)]
        stack.control("POST", "/faults", {"kind": "outage", "service": service, "seconds": OUTAGE_SECONDS})
        n += 1


def _count(
    stack: Any,
    client: Client,
    admin: str,
    editor: str,
    subs: list[Subscriber],
    created: dict[str, int],
    generated: dict[str, str],
    done: dict[str, str],
    events_sent: collections.Counter[tuple[str, str]],
    events_failed: collections.Counter[str],
) -> dict[str, Any]:
    counts: dict[str, int] = dict.fromkeys(INVARIANTS, 0)
    examples: dict[str, list[str]] = collections.defaultdict(list)

    def note(name: str, what: str, n: int = 1) -> None:
        counts[name] += n
        if len(examples[name]) < 3:
            examples[name].append(what if len(what) < 300 else what[:297] + "...")

    statuses: collections.Counter[str] = collections.Counter()
    for article_id, job_id in generated.items():
        code, job = client.call("GET", f"/api/jobs/{job_id}", token=admin)
        _, article = client.call("GET", f"/api/articles/{article_id}", token=editor)
        state = job["state"] if code == 200 else "unknown"
        statuses[f"{article.get('status')}/{state}"] += 1
        if code == 404:
            note("jobs lost", f"{article_id}: job {job_id} unknown")
        elif (article.get("status"), state) in (("PUBLISHED", "completed"), ("DRAFT", "failed")):
            continue
        elif state in ("completed", "failed", "cancelled"):
            note("jobs lost", f"{article_id}: {article.get('status')} with its job {state}")
        else:
            note("jobs stuck", f"{article_id}: {article.get('status')}, job {state}")
    calls = _ok(stack.control("GET", "/generator/calls")[:2], 200)["items"]
    successes = collections.Counter(c["article_id"] for c in calls if c["status"] == 200 and not c.get("replayed"))
    replayed = sum(1 for c in calls if c.get("replayed"))
    for article_id, n in successes.items():
        if n > 1:
            note("generated twice", f"{article_id}: {n} generator calls answered 200")

    # announcements, read back from the author's room (the first editor connection)
    user_room = next((room for room in subs[0].rooms if room.startswith("user:")), None)
    stored = subs[0].read_back(user_room) if user_room else []
    logs = {user_room or "user:?": stored, "admin": subs[2].read_back("admin")}
    published_seqs: dict[str, set[int]] = collections.defaultdict(set)
    for event in stored:
        data = event.get("data") or {}
        if event.get("type") == "article.status" and data.get("status") == "PUBLISHED":
            published_seqs[str(data.get("article_id"))].add(event["seq"])
    for article_id in generated:
        article = client.call("GET", f"/api/articles/{article_id}", token=editor)[1]
        n = len(published_seqs.get(article_id, ()))
        if article.get("status") == "PUBLISHED" and n == 0:
            note("announced not at all", article_id)
        if n > 1:
            note("announced twice", f"{article_id}: seqs {sorted(published_seqs[article_id])}")

    # audit
    for article_id in created:
        code, page = client.call(
            "GET", f"/api/audit?resource_type=article&resource_id={article_id}&limit=100", token=admin
        )
        items = (page.get("items") if isinstance(page, dict) else page) or []
        actions = collections.Counter(e.get("action") for e in items)
        published = sum(
            1
            for e in items
            if e.get("action") == "article.status_changed" and (e.get("details") or {}).get("status") == "PUBLISHED"
        )
        expected = {"article.create": 1, **({"article.generate": 1} if article_id in generated else {})}
        for action, n in expected.items():
            if actions[action] < n:
                note("audit events lost", f"{article_id}: no {action}")
            elif actions[action] > n:
                note("audit events duplicated", f"{article_id}: {action} x{actions[action]}")
        if done.get(article_id) == "PUBLISHED" and published == 0:
            note("audit events lost", f"{article_id}: no status_changed PUBLISHED")
        if published > 1:
            note("audit events duplicated", f"{article_id}: status_changed PUBLISHED x{published}")

    # analytics
    table = stack.aws("dynamodb")
    name = stack.resource_name("analytics_events")
    for article_id in created:
        item = table.get_item(TableName=name, Key={"day": {"S": f"counts#{article_id}"}, "sk": {"S": "counts"}}).get(
            "Item", {}
        )
        for kind in ("view", "click", "share"):
            stored_n = int((item.get(f"count_{kind}") or {}).get("N", 0))
            sent = events_sent[(article_id, kind)]
            if stored_n < sent:
                note("analytics events lost", f"{article_id} {kind}: {stored_n} of {sent}")
            elif stored_n > sent + events_failed[article_id]:
                note("analytics events counted twice", f"{article_id} {kind}: {stored_n} for {sent}")

    # seqs: live frames per connection (which may arrive out of order: clients order by seq), and
    # each room's log read back (in order, each seq once)
    live_disorder = 0
    for sub in subs:
        repeated, disorder = seq_problems(sub.frames)
        live_disorder += disorder
        for what in repeated:
            note("room seqs repeated", f"{sub.name} live: {what}")
        for frame in sub.errors:
            if frame.get("code") == "unavailable":
                client.unavailable[f"{sub.name}: error frame unavailable ({frame.get('action')})"] += 1
            else:
                note("5xx answers", f"{sub.name}: error frame {frame}")
    for room, events in logs.items():
        repeated, disorder = seq_problems(events)
        for what in repeated:
            note("room seqs repeated", f"log of {what}")
        if disorder:
            note("room seqs out of order", f"{room}: {disorder} in its log", disorder)
        seqs = [e["seq"] for e in events]
        if len(seqs) != len(set(seqs)):
            note("room seqs repeated", f"{room}: {len(seqs) - len(set(seqs))} seqs listed twice in its log")
    for what, n in client.server_errors.items():
        note("5xx answers", what, n)
    copies = sum(len(s.frames) - len({(f["room"], f["seq"]) for f in s.frames}) for s in subs)
    return {
        "counts": counts,
        "examples": dict(examples),
        "statuses": dict(statuses),
        "frames": sum(len(s.frames) for s in subs),
        "copies": copies,
        "live_disorder": live_disorder,
        "logs": {room: len(events) for room, events in logs.items()},
        "generator_calls": len(calls),
        "replayed": replayed,
        "dead_letters": _dead_letters(stack),
        "unavailable": dict(client.unavailable),
        "gave_up": dict(client.gave_up),
    }


def _dead_letters(stack: Any) -> int:
    """Messages in the articles dead-letter queue at the end (a job the worker did not fail itself
    went there by SQS's redrive, and nothing will finish it)."""
    attributes = stack.aws("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url("articles-dlq"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench chaos")
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--log", help="keep the stack's log in this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    r = run(args.jobs, args.seed)
    if args.log:
        Path(args.log).write_text(r["log"])
    print(
        f"chaos: {r['jobs']} article generations ({r['created']} articles created; generate answered {r['asked']}), "
        "3 WebSocket subscribers, "
        f"{EVENTS_PER_ARTICLE} analytics events per article, seed {args.seed}; faults: ~5 % of the app's AWS calls "
        f"(throttled, 500, lost answers, latency), duplicate deliveries 5 %, lost deletes 3 %, kills 3 %, "
        f"timeouts 2 %, a {OUTAGE_SECONDS:.0f} s DynamoDB or SQS outage every {OUTAGE_EVERY:.0f} s"
    )
    print(f"  injected {r['injected']}; {r['elapsed']:.0f} s; articles/jobs {r['statuses']}")
    print(
        f"  {r['frames']} frames heard ({r['copies']} copies of one seq, posted twice); {r['generator_calls']} generator calls"
        f" ({r['replayed']} answered again for their Idempotency-Key); {r['dead_letters']} in the articles dead-letter queue"
    )
    print(
        f"  503 answers (retried after Retry-After, up to {RETRIES} times) and unavailable frames: "
        f"{sum(r['unavailable'].values())} {r['unavailable'] or ''}; still 503 after the retries: "
        f"{sum(r['gave_up'].values())} {r['gave_up'] or ''}"
    )
    for name in INVARIANTS:
        n = r["counts"][name]
        shown = f"  e.g. {'; '.join(r['examples'][name])}" if n else ""
        label = f"{name} (500s, resets; not 503)" if name == "5xx answers" else name
        print(f"  {label}: {n}{shown}")
    failing = [name for name in INVARIANTS if r["counts"][name]]
    if failing:
        raise SystemExit(f"chaos: {', '.join(failing)}")


if __name__ == "__main__":
    main()
