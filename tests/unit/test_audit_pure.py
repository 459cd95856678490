"""The audit trail's pure parts: catalogue, redaction, keys and fingerprints, query planning,
summary and report, digests and their comparison, the counts' blocks and their merging."""

from __future__ import annotations

import random

import pytest

from chalicelib import redact
from chalicelib.audit import actions, chain, counts, model, sealer, signing, store
from chalicelib.audit.actions import UnknownAction, classify

KEY = "unit-test-key"
T = 1_795_000_000.0


# --- catalogue ----------------------------------------------------------------------------------


CONTRACT_ACTIONS = [
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "user.create",
    "article.create",
    "article.generate",
    "article.publish",
    "article.archive",
    "settings.update",
    "queue.pause",
    "queue.resume",
    "job.retry",
    "job.remove",
    "queue.clean",
    "schedule.run",
    "analytics.export",
    "system.anything",
]


@pytest.mark.parametrize("action", CONTRACT_ACTIONS)
def test_every_contract_action_is_catalogued_in_a_contract_category(action):
    assert classify(action).category in ("auth", "content", "article", "settings", "system", "analytics")


@pytest.mark.parametrize(
    "action", ["auth.login", "user.create", "settings.update", "queue.pause", "job.retry", "job.remove", "schedule.run"]
)
def test_security_relevant_and_control_actions_are_critical(action):
    assert classify(action).critical


def test_content_actions_are_buffered():
    assert not classify("article.create").critical


def test_overrides_apply_and_are_checked():
    assert classify("article.create", severity="warning", critical=True) == actions.Action("article", "warning", True)
    with pytest.raises(UnknownAction):
        classify("article.create", category="nope")
    with pytest.raises(UnknownAction):
        classify("article.create", severity="loud")


@pytest.mark.parametrize("name", ["login", "Auth.Login", "auth..login", "auth.login!", "a." + "b" * 80, ""])
def test_malformed_names_are_refused(name):
    with pytest.raises(UnknownAction):
        classify(name, "system")


def test_uncatalogued_names_need_a_category_and_are_critical_in_sensitive_ones():
    with pytest.raises(UnknownAction):
        classify("billing.charge")
    assert not classify("billing.charge", "system").critical
    assert classify("billing.audit", "settings").critical


# --- redaction ----------------------------------------------------------------------------------


def test_secret_keys_are_masked_at_any_depth():
    out = redact.details(
        {
            "password": "p",
            "nested": {"api_key": "k", "list": [{"refresh_token": "t"}, {"ok": 1}]},
            "Authorization": "Bearer x",
            "ticket": "abc",
            "email": "a@b.c",
        }
    )
    assert out == {
        "password": redact.MASK,
        "nested": {"api_key": redact.MASK, "list": [{"refresh_token": redact.MASK}, {"ok": 1}]},
        "Authorization": redact.MASK,
        "ticket": redact.MASK,
        "email": "a@b.c",
    }


@pytest.mark.parametrize(
    "text",
    [
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2hlcmU",
        "header was Bearer abc.def",
        "sha256=" + "ab" * 32,
        "scrypt$1024$8$1$c2FsdA==$aGFzaA==",
    ],
)
def test_credential_looking_values_are_masked_under_any_key(text):
    assert redact.MASK in redact.details({"note": text})["note"]


def test_details_are_bounded_and_survive_the_dynamodb_round_trip():
    big = redact.details({"blob": ["x" * 1000] * 40})
    assert big["_truncated"] is True
    assert redact.details({"f": 1.0, "g": 0.5, "n": float("nan"), "big": 10**30}) == {
        "f": 1,
        "g": 0.5,
        "n": "nan",
        "big": str(10**30),
    }
    deep: dict = {}
    cursor = deep
    for _ in range(20):
        cursor["d"] = {}
        cursor = cursor["d"]
    assert "[TOO DEEP]" in str(redact.details(deep))


# --- keys and fingerprints ----------------------------------------------------------------------


def _item(action="article.create", now=T, **kw):
    return model.build(
        action,
        classify(action),
        user_id=kw.get("user_id", "u1"),
        ip="1.2.3.4",
        user_agent="ua",
        request_id="r",
        resource=("article", "a1"),
        details={"n": 1, "f": 0.25},
        now=now,
    )


def test_an_event_is_keyed_by_hour_shard_and_time_and_signed():
    item = model.place(_item(), T, T, KEY)
    assert item["hour"] == f"{model.hour_of(T)}#{model.shard_of(item['id'])}"
    assert item["sk"].startswith(item["ts"] + "#")
    assert item["resource_key"] == "article#a1"
    assert item["category_month"] == "article#" + model.month_of(T)
    assert model.mac_ok(item, KEY)
    assert not model.mac_ok(dict(item, severity="error"), KEY)
    assert not model.mac_ok(item, "another key")


def test_a_late_write_is_keyed_at_its_write_time():
    item = model.place(_item(), T, T + 30, KEY)
    assert item["sk"].startswith(model.timeutil.iso_ms(T + 30)) and item["ts"] == model.timeutil.iso_ms(T)
    assert model.place(_item(), T, T + 1, KEY)["sk"].startswith(item["ts"])


def test_absent_actor_fields_are_left_out_because_index_keys_must_be_strings():
    item = model.build(
        "auth.login_failed",
        classify("auth.login_failed"),
        user_id=None,
        ip=None,
        user_agent=None,
        request_id="r",
        resource=None,
        details={},
        now=T,
    )
    assert "user_id" not in item and "resource_key" not in item
    assert model.public(model.place(item, T, T, KEY))["actor"] == {
        "user_id": None,
        "email": None,
        "ip": None,
        "user_agent": None,
    }


def test_shards_spread_events():
    ids = [f"{random.getrandbits(128):032x}" for _ in range(400)]
    counts = [sum(1 for i in ids if model.shard_of(i) == s) for s in range(model.SHARDS)]
    assert min(counts) > 50


def test_ttl_follows_the_category():
    assert _item("auth.login")["ttl"] - T == pytest.approx(365 * 86400, abs=1)
    assert _item("article.create")["ttl"] - T == pytest.approx(90 * 86400, abs=1)


# --- query planning -----------------------------------------------------------------------------


def test_months_are_listed_newest_first_across_a_year():
    since = 1_767_225_600.0 - 40 * 86400  # late November 2025
    assert store.months(since, 1_767_225_600.0 + 86400) == ["2026-01", "2025-12", "2025-11"]


@pytest.mark.parametrize(
    "filters, index, rest",
    [
        ({"resource_type": "article", "resource_id": "a", "user_id": "u"}, "by_resource", {"user_id": "u"}),
        ({"user_id": "u", "action": "auth.login"}, "by_user", {"action": "auth.login"}),
        ({"action": "auth.login", "category": "auth"}, "by_action", {"category": "auth"}),
        ({"category": "auth"}, "by_category", {}),
        ({}, "by_category", {}),
    ],
)
def test_the_most_selective_index_answers(filters, index, rest):
    source, left = store.source_for(filters, T - 86400, T)
    assert source.index == index and left == rest


def test_no_filter_merges_every_category_per_month():
    source, _ = store.source_for({}, T - 40 * 86400, T)
    assert len(source.groups) == 2 and len(source.groups[0][1]) == len(actions.CATEGORIES)


def test_just_below_excludes_only_the_key_itself():
    keys = sorted(f"2026-11-28T02:00:00.00{d}Z#{random.getrandbits(128):032x}" for d in range(10) for _ in range(5))
    for i, key in enumerate(keys):
        bound = store.just_below(key)
        assert [k for k in keys if k <= bound] == keys[:i]


def test_report_and_summary_aggregate():
    items = [model.place(_item(a, now=T + n), T + n, T + n, KEY) for n, a in enumerate(["auth.login_failed"] * 3)]
    items += [model.place(_item("job.failed", now=T + 10, user_id="u2"), T + 10, T + 10, KEY)]
    for item in items[:3]:
        item["details"] = {"email": "x@y.z"}
    report = store.build_report(items, "a", "b", False)
    assert report["failed_logins"]["total"] == 3 and report["failed_logins"]["by_email"] == {"x@y.z": 3}
    assert report["errors"]["total"] == 1 and report["by_category"] == {"auth": 3, "system": 1}
    assert report["top_users"][0] == {"user_id": "u1", "events": 3}
    summary = store.summarize_user("u1", items[:3], 7, False)
    assert summary["total"] == 3 and summary["first"] <= summary["last"]
    assert store.summarize_user("u", [], 7, False)["first"] is None


# --- digests ------------------------------------------------------------------------------------


def test_segments_split_at_hours_and_stop_at_the_cut():
    start = T - T % 3600 - 1800
    assert chain.segments(start, start + 2 * 3600) == [
        (start, start + 1800),
        (start + 1800, start + 5400),
        (start + 5400, start + 7200),
    ]
    assert chain.segments(start, start) == []


def test_a_digest_commits_to_every_field_and_its_signature_to_the_key():
    head = chain.make_digest(3, "a", "b", "prev", ["l1", "l2"], sealer.sign)
    assert head["hash"] == chain.head_hash(head)
    for field, value in [("seq", 4), ("start", "x"), ("end", "y"), ("prev", "p"), ("count", 1), ("root", "r")]:
        assert chain.head_hash(dict(head, **{field: value})) != head["hash"]
    public = signing.public_key()["public_key_pem"]
    assert signing.valid(public, signing.message("digest", head["hash"]), head["sig"])
    assert not signing.valid(public, signing.message("digest", "0" + head["hash"][1:]), head["sig"])
    assert chain.root(["l2", "l1"]) != head["root"]  # order matters


def _sealed(n):
    items = [model.place(_item(now=T + i), T + i, T + i, KEY) for i in range(n)]
    leaves = {}
    for item in items:
        sk, print_, ttl = chain.leaf(item).split(" ")
        leaves[sk] = (item["id"], print_, int(ttl), "#1")
    return items, leaves, {i["sk"]: "#1" for i in items}


def _compare(leaves, items, sealed_in, now=T):
    out = chain.Findings()
    chain.compare(leaves, items, sealed_in, now, KEY, out)
    return [(p.type, p.event_id) for p in out.problems], out.notes


def test_compare_accepts_an_untouched_period():
    items, leaves, sealed_in = _sealed(5)
    assert _compare(leaves, items, sealed_in) == ([], [])


def test_compare_names_edits_deletes_inserts_and_moves():
    items, leaves, sealed_in = _sealed(6)
    edited = dict(items[0], severity="critical")
    moved = dict(items[2], sk=items[2]["sk"].replace(items[2]["ts"], model.timeutil.iso_ms(T - 1)))
    forged = dict(items[3], id="f" * 32, sk=items[3]["sk"][:-32] + "f" * 32)
    current = [edited, items[1], moved, items[3], forged, items[5]]  # items[4] deleted
    sealed_in.update({moved["sk"]: "#1", forged["sk"]: "#1"})
    problems, _ = _compare(leaves, current, sealed_in)
    assert sorted(problems) == sorted(
        [
            ("event_changed", items[0]["id"]),
            ("event_reordered", items[2]["id"]),
            ("event_deleted", items[4]["id"]),
            ("event_inserted", "f" * 32),
        ]
    )


def test_compare_expects_expired_events_to_be_gone_and_checks_unsealed_ones_by_signature():
    items, leaves, sealed_in = _sealed(3)
    problems, _ = _compare(leaves, items[:2], sealed_in, now=float(items[2]["ttl"]) + 1)
    assert problems == []
    fresh = model.place(_item(now=T + 100), T + 100, T + 100, KEY)
    assert _compare(leaves, [*items, fresh], sealed_in) == ([], [])
    assert _compare(leaves, [*items, dict(fresh, action="auth.login")], sealed_in)[0] == [
        ("event_changed", fresh["id"])
    ]


# --- counts.cover: counted blocks tiling a range, the rest left to the events ----------------------


def _b(lo, hi, n=1, **kw):
    return counts.Block(f"T{lo:02d}", f"T{hi:02d}", {"n": n}, **kw)


def test_cover_prefers_the_longest_block_and_leaves_the_edges_and_holes_to_the_events():
    hour, minutes = _b(10, 20), [_b(m, m + 1) for m in range(5, 25)]
    chosen, gaps = counts.cover([*minutes, hour, _b(30, 31)], "T07", "T35")
    minute = [(f"T{m:02d}", f"T{m + 1:02d}") for m in range(40)]
    assert [(b.lo, b.hi) for b in chosen] == [*minute[7:10], ("T10", "T20"), *minute[20:25], ("T30", "T31")]
    assert gaps == [("T25", "T30"), ("T31", "T35~")]  # the last one takes `until`'s millisecond too


def test_cover_never_uses_a_block_reaching_outside_the_range_and_starts_with_a_gap_before_the_first():
    chosen, gaps = counts.cover([_b(0, 10), _b(10, 20), _b(20, 30)], "T05", "T25")
    assert [(b.lo, b.hi) for b in chosen] == [("T10", "T20")]
    assert gaps == [("T05", "T10"), ("T20", "T25~")]


def test_cover_cuts_an_empty_block_to_the_range():
    chosen, gaps = counts.cover([_b(0, 40, empty=True), _b(12, 14)], "T05", "T25")
    assert [(b.lo, b.hi) for b in chosen] == [("T05", "T25")]  # the whole range counts nothing
    assert gaps == [("T25", "T25~")]
    chosen, _ = counts.cover([_b(0, 12, empty=True), _b(12, 14), _b(14, 40, empty=True)], "T05", "T25")
    assert [(b.lo, b.hi, b.empty) for b in chosen] == [
        ("T05", "T12", True),
        ("T12", "T14", False),
        ("T14", "T25", True),
    ]


def test_minute_tallies_count_every_minute_of_a_period_empty_ones_too():
    items = [{"sk": "2026-11-24T10:05:59.999Z#a"}, {"sk": "2026-11-24T10:06:00.000Z#b"}]
    from datetime import UTC, datetime

    lo = datetime(2026, 11, 24, 10, 5, 30, tzinfo=UTC).timestamp()
    counted = counts.minute_tallies(items, lo, lo + 150, len)
    assert counted == {"2026-11-24T10:05": 1, "2026-11-24T10:06": 1, "2026-11-24T10:07": 0}
    blocks = counts.minute_blocks({"2026-11-24T10:05": {}}, "2026-11-24T10:05:30.000Z", "2026-11-24T11:00:00.000Z")
    assert [(b.lo, b.hi) for b in blocks] == [("2026-11-24T10:05:30.000Z", "2026-11-24T10:06:00.000Z")]


def test_an_hour_merged_from_its_minutes_counts_as_its_events_do():
    actions_ = ("auth.login_failed", "article.create", "settings.update", "article.generation_failed")
    at = [T - T % 3600 + 7.5 * i for i in range(40)]
    events = [model.place(_item(actions_[n % 4], now=t, user_id=f"u{n % 3}"), t, t, KEY) for n, t in enumerate(at)]
    minutes = counts.minute_tallies(events, at[0], at[0] + 300, store.tally)
    assert len(minutes) == 5 and len(store.tally(events)) == 2  # two retention classes
    assert counts.merged(list(minutes.values()), store.merge) == store.tally(events)
    mine = [e for e in events if e["user_id"] == "u1"]
    by_minute = counts.minute_tallies(mine, at[0], at[0] + 300, store.user_tally)
    assert counts.merged(list(by_minute.values()), store.merge_user) == {
        c: store.merge_user([t]) for c, t in store.user_tally(mine).items()
    }


def test_the_counts_layers_are_named_apart_from_the_chain_and_from_each_other():
    keys = [counts.minutes_key("2026-11-24"), counts.user_minutes_key("u"), counts.hours_key("2026-11-24")]
    keys += [counts.user_hours_key("u"), counts.STATE["hour"]]
    assert [next(p for p in sorted(counts.LAYERS, key=len, reverse=True) if k.startswith(p)) for k in keys] == [
        "counts-minutes#",
        "counts-minutes-user#",
        "counts-hours#",
        "counts-hours-user#",
        "counts-state",
    ]
    assert not any(k.startswith(chain.CHAIN["hour"]) or k[:4].isdigit() for k in keys)


def test_a_manifest_edited_or_missing_from_its_writers_chain_is_named():
    from chalicelib.audit import manifest

    lines = [f"{model.hour_of(T)}#1 {model.timeutil.iso_ms(T)}#{'a' * 32} {'0' * 64} {int(T) + 999}"]
    made = [manifest.build(lines, T + n, KEY) for n in range(4)]
    read = manifest.read(made, T + 1000, KEY)
    assert read.problems == [] and len(read.events) == 1
    assert manifest.read(made, T + 60, KEY).events == {}  # younger than GRACE: not checked yet
    edited = [made[0], dict(made[1], keys=""), made[2], made[3]]
    assert [p[0] for p in manifest.read(edited, T + 1000, KEY).problems] == ["manifest_invalid"]
    gap = manifest.read([made[0], made[1], made[3]], T + 1000, KEY).problems
    assert gap == [
        ("manifest_deleted", f"manifests {made[2]['seq']}..{made[2]['seq']} of writer {manifest.WRITER} are gone", None)
    ]
