"""Load through the whole system: N article generations through the local stack.

The stack runs in a subprocess on free ports (as the e2e tests start it) with the real app. The
fake generator fails FAILURE_RATE of its calls at random (500) and answers 429 with Retry-After
above GENERATOR_RATE calls a second; the articles queue is limited to QUEUE_RATE starts a second
(PUT /api/queues/articles/limits) and runs CONCURRENCY invocations at once. An editor creates N
articles, then asks to generate each (4 client threads); one client thread polls the listings of
PUBLISHED and DRAFT articles once a second until each is PUBLISHED or rolled back with its job
failed for good.

It checks and prints: lost (a job neither completed nor failed, an article neither PUBLISHED nor
rolled back), stuck (not done within the deadline), published twice (two successful generator
calls for one article, or two PUBLISHED in its audited status history), the most generator calls
in one second (the generator's own call times) against its limit, throughput (jobs/s, first POST
to last job done), p50/p95 from POST .../generate to PUBLISHED (the article's updated_at), and
the CPU the stack's processes used per job (the machine is shared: a steadier figure than time).

`python -m bench load`; N from `--jobs N` or INKWELL_BENCH_JOBS (default 1,000).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

JOBS = 1000
FAILURE_RATE = 0.3
GENERATOR_RATE = 60  # calls a second the fake generator takes before answering 429
QUEUE_RATE = 50  # job starts a second the articles queue allows (under the generator's rate)
CONCURRENCY = 10  # invocations of the articles worker at once
GENERATOR_DELAY = "0.05"  # seconds a generator call takes


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run(jobs: int) -> dict[str, Any]:
    from tests.e2e.conftest import start_stack, stop_stack

    with tempfile.TemporaryDirectory() as tmp:
        process, stack = start_stack(
            Path(tmp), INKWELL_LOCAL_APP="app:app", INKWELL_GENERATOR_DELAY=GENERATOR_DELAY, INKWELL_LOG_LEVEL="WARNING"
        )
        try:
            before = _cpu_seconds(process.pid)
            result = _load(stack, jobs)
            result["cpu_per_job"] = (_cpu_seconds(process.pid) - before) / jobs
            return result
        except BaseException:
            print(stack.log_tail(60), file=sys.stderr)
            raise
        finally:
            stop_stack(process)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds the stack's process and its children (moto's server) have used so far (Linux)."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _ok(answer: tuple[int, Any, dict[str, str]], *expected: int) -> Any:
    status, body, _ = answer
    if status not in expected:
        raise AssertionError(f"HTTP {status}: {body}")
    return body


def _record(
    article: dict[str, Any], published: dict[str, float], rolled_back: dict[str, float], pending: set[str], since: float
) -> bool:
    """Note an article that is done: PUBLISHED, or DRAFT again after its generation was asked for."""
    if article["id"] not in pending or _ts(article["updated_at"]) < since:
        return False
    done = {"PUBLISHED": published, "DRAFT": rolled_back}.get(article["status"])
    if done is None:
        return False
    done[article["id"]] = _ts(article["updated_at"])
    pending.discard(article["id"])
    return True


def _newest(stack: Any, token: str, status: str, done: dict[str, float], pending: set[str], since: float) -> int:
    """Articles newly done in `status`, from its listing (newest first): a page at a time until a
    page brings nothing new (few requests, so the polling barely loads the stack it measures)."""
    found, cursor = 0, ""
    while True:
        page = _ok(stack.request("GET", f"/api/articles?status={status}&limit=100{cursor}", token=token), 200)
        new = sum(
            _record(a, *((done, {}) if status == "PUBLISHED" else ({}, done)), pending, since) for a in page["items"]
        )
        found += new
        if not new or not page.get("next_cursor"):
            return found
        cursor = f"&cursor={quote(page['next_cursor'])}"


def _load(stack: Any, jobs: int) -> dict[str, Any]:
    admin = stack.login()
    _ok(
        stack.request(
            "POST",
            "/api/users",
            {"email": "load@example.com", "password": "load-password-1-long-enough", "role": "editor"},
            token=admin,
        ),
        201,
    )
    editor = stack.login("load@example.com", "load-password-1-long-enough")
    limits = {"concurrency": CONCURRENCY, "rate_limit": {"max": QUEUE_RATE, "duration_seconds": 1}}
    _ok(stack.request("PUT", "/api/queues/articles/limits", limits, token=admin), 200)
    _ok(
        stack.control(
            "POST", "/generator/load", {"failure_rate": FAILURE_RATE, "rate_limit": GENERATOR_RATE, "seed": 1}
        ),
        204,
    )

    def create(i: int) -> str:
        body = {"title": f"load {i}", "topic": f"topic {i}", "keywords": ["load"]}
        return str(_ok(stack.request("POST", "/api/articles", body, token=editor), 201)["id"])

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(create, range(jobs)))
    time.sleep(5.5)  # past the limit settings' cache, so every worker sees the limits

    posted: dict[str, float] = {}
    job_of: dict[str, str] = {}

    def generate(article_id: str) -> None:
        posted[article_id] = time.time()
        answer = _ok(stack.request("POST", f"/api/articles/{article_id}/generate", token=editor), 202)
        job_of[article_id] = answer["job_id"]

    started = time.time()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(generate, ids))
    deadline = time.monotonic() + 120 + jobs * 0.5
    pending, published, rolled_back = set(ids), {}, {}
    quiet = 0
    while pending and time.monotonic() < deadline:
        time.sleep(1.0)
        news = _newest(stack, editor, "PUBLISHED", published, pending, started)
        news += _newest(stack, editor, "DRAFT", rolled_back, pending, started)
        quiet = 0 if news else quiet + 1
        if pending and quiet >= 3:  # nothing new for a while: ask for each one left (also catches a missed one)
            for article_id in sorted(pending):
                article = _ok(stack.request("GET", f"/api/articles/{article_id}", token=editor), 200)
                _record(article, published, rolled_back, pending, started)
    finished = max([*published.values(), *rolled_back.values()], default=time.time())
    elapsed = finished - started

    # Every job ended: completed or failed, or gone from the listing (only ended jobs are trimmed,
    # past the newest ones the worker keeps), and nothing of the queue waits or runs any more.
    states: collections.Counter[str] = collections.Counter()
    for article_id in ids:
        status, job, _ = stack.request("GET", f"/api/jobs/{job_of[article_id]}", token=admin)
        state = "ended, trimmed" if status == 404 else _ok((status, job, {}), 200)["state"]
        states[state] += 1
        if article_id in rolled_back and state not in ("failed", "ended, trimmed"):
            pending.add(article_id)  # rolled back while its job may still run: not done
    lost = sum(n for state, n in states.items() if state not in ("completed", "failed", "ended, trimmed"))
    queue = _ok(stack.request("GET", "/api/queues/stats", token=admin), 200)["queues"]["articles"]
    left = sum(int(queue[k]) for k in ("waiting", "active", "delayed"))

    calls = _ok(stack.control("GET", "/generator/calls"), 200)["items"]
    per_second = collections.Counter(int(c["at"]) for c in calls)
    successes = collections.Counter(c["article_id"] for c in calls if c["status"] == 200)
    twice = {a for a, n in successes.items() if n > 1}
    for article_id in published:
        events = _ok(
            stack.request("GET", f"/api/audit?resource_type=article&resource_id={article_id}", token=admin), 200
        )
        items = events.get("items", events) if isinstance(events, dict) else events
        if sum(1 for e in items if (e.get("details") or {}).get("status") == "PUBLISHED") > 1:
            twice.add(article_id)
    latencies = [published[a] - posted[a] for a in published]
    return {
        "jobs": jobs,
        "published": len(published),
        "failed_for_good": len(rolled_back),
        "job_states": dict(states),
        "lost": lost,
        "stuck": len(pending) + left,
        "published_twice": len(twice),
        "generator_calls": len(calls),
        "generator_429": sum(1 for c in calls if c["status"] == 429),
        "max_calls_per_second": max(per_second.values(), default=0),
        "elapsed": elapsed,
        "throughput": jobs / elapsed,
        "p50": _percentile(latencies, 0.5),
        "p95": _percentile(latencies, 0.95),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_load")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("INKWELL_BENCH_JOBS", JOBS)))
    jobs = parser.parse_args(sys.argv[1:] if argv is None else argv).jobs
    r = run(jobs)
    print(
        f"load: {r['jobs']} article jobs, generator failing {FAILURE_RATE:.0%} at random and answering 429 above "
        f"{GENERATOR_RATE}/s, queue limit {QUEUE_RATE}/s, concurrency {CONCURRENCY}, generator delay {GENERATOR_DELAY} s"
    )
    print(
        f"  {r['published']} published, {r['failed_for_good']} failed for good (rolled back); jobs {r['job_states']}; "
        f"{r['generator_calls']} generator calls ({r['generator_429']} answered 429)"
    )
    print(
        f"  lost {r['lost']}, stuck {r['stuck']}, published twice {r['published_twice']}, "
        f"most generator calls in one second {r['max_calls_per_second']} (limit {GENERATOR_RATE})"
    )
    print(
        f"  throughput {r['throughput']:.1f} jobs/s ({r['elapsed']:.1f} s); POST .../generate -> PUBLISHED "
        f"p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s; the stack's CPU {r['cpu_per_job'] * 1000:.0f} ms per job "
        "(creating the articles included)"
    )
    problems = [name for name in ("lost", "stuck", "published_twice") if r[name]] + (
        ["over the generator's limit"] if r["max_calls_per_second"] > GENERATOR_RATE else []
    )
    if problems:
        raise SystemExit(f"load: {', '.join(problems)}")


if __name__ == "__main__":
    main()
