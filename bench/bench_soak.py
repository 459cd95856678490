"""Soak: a steady mixed load through the local stack for N minutes, watching what it holds.

The stack runs in a subprocess (the real app). Each second the load asks for RATE article
creations each followed by its generation, RATE x 2 analytics events, RATE x 3 reads (an article,
a listing, the queue stats) and a login every 10 s, while a WebSocket connection listens
throughout and another one opens and closes every 10 s. Per interval (5 minutes; `--interval`
seconds for quick runs) it prints the stack process's resident memory (RSS), threads, open
files, and the p95 latency of the interval's REST answers; moto's own process is shown apart
with the items its tables hold (its store grows with the data, by design). The verdict: "flat" when, after the first interval
(warm-up), the mean of the last third of the intervals is within 10 % of the first third's for
each of RSS, threads and open files, and p95 latency; otherwise "growing" naming what grew.

`python -m bench soak --minutes N [--interval S]` (default 3 minutes in 1-minute intervals under
`make bench`; the README's figure is a 30-minute run in 5-minute intervals).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RATE = 1  # article generations a second (and twice that in analytics events, three times in reads)
TOLERANCE = 0.10
VIEWERS = 5  # the analytics events' senders, in turn: each stays within its quotas (120 a minute, 2,000 an hour)
RENEW_SECONDS = 300.0  # access tokens last 15 minutes: every role logs in again this often


def _process(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "threads": int(status["Threads"]),
        "files": len(list(Path(f"/proc/{pid}/fd").iterdir())),
    }


def _moto_pid(pid: int) -> int | None:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else None


def _stored_items(stack: Any) -> int:
    """Items in the stack's tables (moto's live ItemCount): what moto's memory holds."""
    dynamodb = stack.aws("dynamodb")
    names = [name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]]
    return sum(int(dynamodb.describe_table(TableName=name)["Table"].get("ItemCount", 0)) for name in names)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else float("nan")


class Tokens:
    """An access token per account, renewed by a login every RENEW_SECONDS."""

    def __init__(self, stack: Any, accounts: dict[str, tuple[str, str]]) -> None:
        self.stack, self.accounts = stack, accounts
        self._tokens: dict[str, tuple[float, str]] = {}

    def __getitem__(self, name: str) -> str:
        at, token = self._tokens.get(name, (0.0, ""))
        if time.monotonic() - at > RENEW_SECONDS:
            token = self.stack.login(*self.accounts[name])
            self._tokens[name] = (time.monotonic(), token)
        return token


class Load:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.latencies: list[float] = []
        self.errors = 0
        self.refused = 0  # 4xx: a load the stack turned away is not the load asked for
        self.requests = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        started = time.perf_counter()
        try:
            status, answer, _ = self.stack.request(method, path, body, token=token)
        except OSError:
            status, answer = 599, None
        with self._lock:
            self.latencies.append(time.perf_counter() - started)
            self.requests += 1
            self.errors += status >= 500
            self.refused += 400 <= status < 500
        return status, answer

    def take(self) -> tuple[list[float], int, int, int]:
        with self._lock:
            taken, self.latencies = self.latencies, []
            counts = (self.requests, self.errors, self.refused)
            self.requests = self.errors = self.refused = 0
        return taken, *counts

    def run(self, tokens: Tokens, email: str, password: str) -> None:
        rng = random.Random(1)
        articles: list[str] = []
        tick = 0
        while not self.stop.is_set():
            started = time.monotonic()
            editor, viewer, admin = tokens["editor"], tokens["viewer0"], tokens["admin"]
            for _ in range(RATE):
                status, article = self.call(
                    "POST", "/api/articles", {"title": f"soak {tick}", "topic": "soak", "keywords": []}, editor
                )
                if status == 201:
                    articles.append(article["id"])
                    self.call("POST", f"/api/articles/{article['id']}/generate", token=editor)
            for n in range(2 * RATE):
                if articles:
                    kind = rng.choice(["view", "click", "share"])
                    body = {"article_id": rng.choice(articles[-200:]), "type": kind}
                    self.call("POST", "/api/analytics/events", body, tokens[f"viewer{(2 * tick + n) % VIEWERS}"])
            for _ in range(RATE):
                if articles:
                    self.call("GET", f"/api/articles/{rng.choice(articles[-200:])}", token=viewer)
                self.call("GET", "/api/articles?limit=20", token=viewer)
                self.call("GET", "/api/queues/stats", token=admin)
            if tick % 10 == 0:
                self.call("POST", "/api/auth/login", {"email": email, "password": password})
                self._flicker(viewer)
            tick += 1
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def _flicker(self, token: str) -> None:
        """A WebSocket connection opened, pinged and closed."""
        from websockets.sync.client import connect

        status, answer = self.call("POST", "/api/realtime/ticket", token=token)
        if status != 200:
            return
        try:
            with connect(self.stack.ws(ticket=answer["ticket"]), open_timeout=10) as ws:
                ws.send('{"action":"ping"}')
                ws.recv(timeout=10)
        except Exception as exc:  # counted, the load goes on
            print(f"  websocket: {exc!r}", file=sys.stderr)


def _listen(stack: Any, token: str, stop: threading.Event, load: Load) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ticket = load.call("POST", "/api/realtime/ticket", token=token)[1]["ticket"]
    with connect(stack.ws(ticket=ticket), open_timeout=10) as ws:
        while not stop.is_set():
            try:
                ws.recv(timeout=1)
            except TimeoutError:
                continue
            except ConnectionClosed:  # the stack going away at the end (1001), or closing it before
                if not stop.is_set():
                    load.errors += 1
                    print("  websocket: the listening connection was closed before the end", file=sys.stderr)
                return


def verdict(samples: list[dict[str, float]]) -> tuple[bool, list[str]]:
    """(flat, what grew) over the samples after the first (warm-up), last third against first;
    never flat when the stack answered 5xx or turned the load away (4xx): then it was not the
    load asked for."""
    kept = samples[1:] if len(samples) >= 3 else samples
    third = max(1, math.ceil(len(kept) / 3))
    grew = [f"{key} {total:.0f}" for key in ("errors", "refused") if (total := sum(s.get(key, 0) for s in samples))]
    for key in ("rss_mb", "threads", "files", "p95_ms"):
        first = sum(s[key] for s in kept[:third]) / third
        last = sum(s[key] for s in kept[-third:]) / third
        if last > first * (1 + TOLERANCE):
            grew.append(f"{key} {first:.1f} -> {last:.1f}")
    return not grew, grew


def run(minutes: float, interval: float) -> list[dict[str, float]]:
    from tests.e2e.conftest import start_stack, stop_stack

    with tempfile.TemporaryDirectory() as tmp:
        process, stack = start_stack(
            Path(tmp), INKWELL_LOCAL_APP="app:app", INKWELL_GENERATOR_DELAY="0.05", INKWELL_LOG_LEVEL="WARNING"
        )
        load = Load(stack)
        try:
            admin = stack.login()
            password = "soak-password-1"
            people = {"editor": "soak-editor@example.com"}
            people |= {f"viewer{n}": f"soak-viewer{n}@example.com" for n in range(VIEWERS)}
            for name, email in people.items():
                role = "editor" if name == "editor" else "viewer"
                load.call("POST", "/api/users", {"email": email, "password": password, "role": role}, admin)
            accounts = {name: (email, password) for name, email in people.items()}
            tokens = Tokens(stack, {**accounts, "admin": (stack.admin_email, stack.admin_password)})
            threads = [
                threading.Thread(target=load.run, args=(tokens, people["viewer0"], password), daemon=True),
                threading.Thread(target=_listen, args=(stack, tokens["editor"], load.stop, load), daemon=True),
            ]
            for thread in threads:
                thread.start()
            samples = []
            ends = time.monotonic() + minutes * 60
            moto = _moto_pid(process.pid)
            while time.monotonic() < ends - 1:
                load.stop.wait(min(interval, ends - time.monotonic()))
                latencies, requests, errors, refused = load.take()
                sample = {
                    "minute": round((minutes * 60 - (ends - time.monotonic())) / 60, 1),
                    **_process(process.pid),
                    "p95_ms": _p95(latencies) * 1000,
                    "requests": requests,
                    "errors": errors,
                    "refused": refused,
                    "moto_rss_mb": _process(moto)["rss_mb"] if moto else float("nan"),
                    "items": _stored_items(stack),
                }
                samples.append(sample)
                print(
                    f"  at {sample['minute']:5.1f} min: RSS {sample['rss_mb']:.0f} MB, {sample['threads']:.0f} threads, "
                    f"{sample['files']:.0f} open files, p95 {sample['p95_ms']:.0f} ms over {requests} requests "
                    f"({errors} 5xx, {refused} 4xx); moto RSS {sample['moto_rss_mb']:.0f} MB for {sample['items']} stored items",
                    flush=True,
                )
            load.stop.set()
            for thread in threads:
                thread.join(10)
            return samples
        except BaseException:
            print(stack.log_tail(60), file=sys.stderr)
            raise
        finally:
            load.stop.set()
            stop_stack(process)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench soak")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--interval", type=float, help="seconds between samples (default: 5 minutes, 1 under 15)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    interval = args.interval or (300.0 if args.minutes >= 15 else 60.0)
    print(f"soak: {args.minutes:g} minutes of steady mixed load ({RATE} generation/s), a sample every {interval:g} s")
    samples = run(args.minutes, interval)
    flat, grew = verdict(samples)
    print(
        f"  verdict: {'flat' if flat else 'growing: ' + ', '.join(grew)} (last third within 10 % of the first after warm-up)"
    )
    if not flat:
        raise SystemExit("soak: not flat")


if __name__ == "__main__":
    main()
