"""The chaos and soak benchmarks' judgments: what counts as a repeated or out-of-order seq, and
when a soak is flat."""

from __future__ import annotations

from typing import Any

from bench.bench_chaos import seq_problems
from bench.bench_soak import verdict


def frame(room: str, seq: int, data: Any) -> dict[str, Any]:
    return {"type": "article.status", "room": room, "seq": seq, "data": data}


def test_a_seq_given_to_two_events_is_repeated_and_a_copy_is_not() -> None:
    frames = [frame("r", 1, "a"), frame("r", 1, "a"), frame("r", 2, "b"), frame("r", 2, "c"), frame("s", 2, "d")]
    repeated, disorder = seq_problems(frames)
    assert len(repeated) == 1 and "r seq 2" in repeated[0] and disorder == 0


def test_a_seq_below_one_heard_before_is_out_of_order() -> None:
    assert seq_problems([frame("r", 3, "a"), frame("r", 1, "b"), frame("r", 2, "c"), frame("s", 1, "d")])[1] == 2


def sample(rss: float, threads: int = 20, files: int = 50, p95: float = 100) -> dict[str, float]:
    return {"rss_mb": rss, "threads": threads, "files": files, "p95_ms": p95}


def test_a_soak_is_flat_when_the_last_third_stays_within_ten_percent_of_the_first() -> None:
    warm_up = sample(50)  # the first interval is left out
    assert verdict([warm_up, sample(100), sample(104), sample(108), sample(105), sample(109), sample(109.5)]) == (
        True,
        [],
    )
    flat, grew = verdict([warm_up, sample(100), sample(100), sample(105), sample(110), sample(111), sample(112)])
    assert not flat and grew == ["rss_mb 100.0 -> 111.5"]
    assert verdict([sample(100), sample(100, threads=30), sample(100, threads=40)])[1] == ["threads 30.0 -> 40.0"]


def test_the_chaos_client_retries_a_503_and_counts_it_apart_from_a_500(monkeypatch) -> None:
    import bench.bench_chaos as chaos

    monkeypatch.setattr(chaos.time, "sleep", lambda seconds: None)

    class Stack:
        def __init__(self, answers: list[int]) -> None:
            self.answers = answers

        def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple:
            status = self.answers.pop(0)
            return status, {}, {"retry-after": "1"} if status == 503 else {}

    client = chaos.Client(Stack([503, 503, 202, 500, *[503] * (chaos.RETRIES + 1)]))
    assert client.call("POST", "/api/analytics/events")[0] == 202
    assert client.call("POST", "/api/articles")[0] == 500
    assert client.call("GET", "/api/jobs")[0] == 503  # given up after RETRIES
    assert client.unavailable == {"POST /api/analytics/events 503": 2, "GET /api/jobs 503": chaos.RETRIES + 1}
    assert client.server_errors == {"POST /api/articles 500": 1}
    assert client.gave_up == {"GET /api/jobs 503": 1}


def test_the_chaos_client_sends_a_call_s_idempotency_key_with_each_retry(monkeypatch) -> None:
    import bench.bench_chaos as chaos

    monkeypatch.setattr(chaos.time, "sleep", lambda seconds: None)
    sent: list[dict] = []

    class Stack:
        def request(self, method: str, path: str, body: Any = None, token: str | None = None, headers=None) -> tuple:
            sent.append(headers)
            return (503, {}, {"retry-after": "1"}) if len(sent) == 1 else (202, {}, {})

    assert chaos.Client(Stack()).call("POST", "/api/analytics/events", key="a-1")[0] == 202
    assert sent == [{"Idempotency-Key": "a-1"}] * 2


def test_a_soak_whose_load_was_turned_away_or_failed_is_not_flat() -> None:
    """After 15 minutes the soak's tokens had expired and its events passed their quotas: every
    answer a fast 4xx, which looked flat. A refused or failed answer now fails the verdict."""
    steady = [sample(100) for _ in range(6)]
    assert verdict(steady) == (True, [])
    assert verdict([*steady[:5], {**sample(100), "refused": 1800}]) == (False, ["refused 1800"])
    assert verdict([*steady[:5], {**sample(100), "errors": 2}]) == (False, ["errors 2"])
