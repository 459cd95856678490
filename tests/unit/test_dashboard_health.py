"""The queue health rules, without AWS: thresholds from the setting, and each check."""

from __future__ import annotations

import pytest

from chalicelib.dashboard import health
from chalicelib.dashboard.health import DEFAULTS, Facts, evaluate, thresholds

NOW = 1_800_000_000.0
QUIET = Facts(0, None, 0, 0, False, None)


def failing(facts: Facts, limits: dict | None = None) -> list[str]:
    return [c["check"] for c in evaluate("emails", facts, limits or dict(DEFAULTS), NOW) if not c["ok"]]


def test_a_quiet_queue_passes_every_check():
    checks = evaluate("emails", QUIET, dict(DEFAULTS), NOW)
    assert [c["check"] for c in checks] == ["dead_letters", "oldest_waiting", "failure_rate", "paused"]
    assert all(c["ok"] and c["queue"] == "emails" for c in checks)


def test_dead_letters_fail_above_the_threshold_not_at_it():
    limits = dict(DEFAULTS, max_dead_letters=2)
    assert failing(Facts(2, None, 0, 0, False, None), limits) == []
    assert failing(Facts(3, None, 0, 0, False, None), limits) == ["dead_letters"]


def test_the_oldest_waiting_job_fails_past_its_age():
    assert failing(Facts(0, NOW - 299, 0, 0, False, None)) == []
    assert failing(Facts(0, NOW - 301, 0, 0, False, None)) == ["oldest_waiting"]
    assert failing(Facts(0, NOW + 10, 0, 0, False, None)) == []  # a clock skew is not an age


def test_the_failure_rate_counts_only_from_a_minimum_sample():
    assert failing(Facts(0, None, 0, 3, False, None)) == []  # 3 of 3, but only 3 finished
    assert failing(Facts(0, None, 3, 1, False, None)) == []  # 25 % is the limit
    assert failing(Facts(0, None, 2, 2, False, None)) == ["failure_rate"]


def test_a_pause_fails_only_once_it_lasts_too_long():
    assert failing(Facts(0, None, 0, 0, True, NOW - 60)) == []
    assert failing(Facts(0, None, 0, 0, True, NOW - 3601)) == ["paused"]
    assert failing(Facts(0, None, 0, 0, True, None)) == []  # unknown since when


def test_thresholds_layer_defaults_setting_and_queue_override():
    setting = {"max_dead_letters": 5, "queues": {"emails": {"max_dead_letters": 0, "max_failure_rate": 0.5}}}
    assert thresholds(setting, "emails") == dict(DEFAULTS, max_dead_letters=0, max_failure_rate=0.5)
    assert thresholds(setting, "articles") == dict(DEFAULTS, max_dead_letters=5)


@pytest.mark.parametrize(
    "setting",
    [
        None,
        "x",
        3,
        [],
        {"max_dead_letters": "5"},
        {"max_dead_letters": -1},
        {"max_dead_letters": True},
        {"queues": "emails"},
        {"queues": {"emails": []}},
        {"unknown": 1},
    ],
)
def test_a_malformed_setting_keeps_the_defaults(setting):
    assert thresholds(setting, "emails") == DEFAULTS


def test_the_summary_names_the_failing_checks():
    checks = evaluate("emails", Facts(11, None, 0, 0, False, None), dict(DEFAULTS), NOW)
    assert health.summary(checks) == "emails dead_letters: 11 message(s) in the dead-letter queue"
