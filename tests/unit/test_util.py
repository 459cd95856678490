"""JSON <-> DynamoDB conversions and what DynamoDB can store."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from chalicelib import timeutil, util


def test_floats_become_decimals_and_come_back_as_numbers():
    stored = util.to_dynamo({"a": 1.5, "b": [0.25, {"c": 2}], "d": "x", "e": None, "f": True})
    assert stored == {"a": Decimal("1.5"), "b": [Decimal("0.25"), {"c": 2}], "d": "x", "e": None, "f": True}
    assert util.from_dynamo(stored) == {"a": 1.5, "b": [0.25, {"c": 2}], "d": "x", "e": None, "f": True}


def test_integral_decimals_come_back_as_ints_and_sets_as_lists():
    assert util.from_dynamo(Decimal("3")) == 3 and isinstance(util.from_dynamo(Decimal("3")), int)
    assert sorted(util.from_dynamo({"a", "b"})) == ["a", "b"]


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -0.0, 1.5, 10**38 - 1, 1e125, -1e125, 1e-130, "x", [], {}, {"a": [1, {"b": 2}]}],
)
def test_storable_values_have_no_problem(value):
    assert util.storable_problem(value) is None


@pytest.mark.parametrize(
    "value, words",
    [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ([float("-inf")], "finite"),
        (10**38, "38 digits"),
        (10**400, "38 digits"),
        (1e200, "magnitude"),
        (1e-140, "magnitude"),
        ({"deep": {"er": [1.7976931348623157e308]}}, "magnitude"),
    ],
)
def test_numbers_dynamodb_cannot_hold_are_named(value, words):
    assert words in util.storable_problem(value)


def test_nesting_deeper_than_the_limit_is_refused():
    ok: object = 1
    for _ in range(util.MAX_DEPTH):
        ok = [ok]
    assert util.storable_problem(ok) is None
    assert "deeply" in util.storable_problem([ok])


def test_a_very_deep_value_is_refused_without_walking_all_of_it():
    deep: object = 1
    for _ in range(5000):
        deep = {"x": deep}
    assert "deeply" in util.storable_problem(deep)


def test_time_helpers_format_utc_with_a_z():
    assert timeutil.iso(0) == "1970-01-01T00:00:00Z"
    assert timeutil.iso_ms(1.5) == "1970-01-01T00:00:01.500Z"
    assert timeutil.parse_iso("1970-01-01T00:00:01.500Z") == 1.5
    assert timeutil.parse_iso("1970-01-01T00:00:10") == 10  # naive means UTC
    assert timeutil.ttl_fields(86400 * 2 + 5) == {"ttl": 86400 * 2 + 5, "expiry_day": "1970-01-03"}


@pytest.mark.parametrize(
    "day, week",
    [(date(2026, 11, 30), "2026-W49"), (date(2027, 1, 1), "2026-W53"), (date(2024, 12, 30), "2025-W01")],
)
def test_iso_week_names_the_iso_year_and_is_what_reports_parse(day, week):
    from chalicelib.content import reports

    assert timeutil.iso_week(day) == week
    assert reports.parse_week(week) == day - timedelta(days=day.weekday())  # its Monday
