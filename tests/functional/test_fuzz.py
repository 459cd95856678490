"""Hostile input, everywhere: no request and no WebSocket frame a client can send yields a 5xx or
a crash.

Every REST route of the app (read from `app.routes`, so a new route is fuzzed without a line
here) gets, for each of anonymous / viewer / editor / admin, a fixed set of hostile inputs (bodies
that are not JSON or not objects, every field of the route's valid body replaced by wrongly typed,
oversized, unicode, control-character and deeply nested values, a 1 MB body, odd path parameters,
odd query strings) plus a few variants drawn from a seeded `random.Random`, so a run is
reproducible. A role the route's guard refuses gets a seeded sample of those cases (the guard must
hold under hostile input; nothing behind it runs), and the few routes in SLOW_ROUTES a sample of
the query strings. Odd `Authorization` and `Content-Type` headers are sent once per route. Every answer
must be below 500 (a 503 `{"status":"unhealthy"}` from the queue health check is a designed answer,
not a fault), and every 4xx must carry the contract's `{"Code","Message"}`.

A route's valid body and concrete path come from its row in `test_authorization.ENDPOINTS` (which
fails the suite for a route without a row); a route still without one is fuzzed with `x` for its
path parameters and an empty object as its valid body.

The WebSocket part sends garbage, binary, oversized and wrongly typed frames to `$default`, and odd
query strings to `$connect`: the handlers never raise, every reply is a dict frame, errors are
`{"type":"error","message":...}` and the connection is still there afterwards.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from typing import Any

import jwt
import pytest

from tests.conftest import ANONYMOUS, fill
from tests.functional.test_authorization import ENDPOINTS, ROLES, fill_body
from tests.functional.ws_support import Context, FakeManagement, Gateway, ws_event

SEED = 20261128
RANDOM_CASES_PER_ROUTE_AND_ROLE = 6
REFUSED_CASES_PER_ROUTE = 12
# Routes that cost far more than the others per call on moto get a seeded sample of the query
# strings instead of all of them: /api/audit/verify re-reads 25 hours of the trail (~130 queries,
# 0.4 s a call). Its time parameters are tested case by case in test_audit.py.
SLOW_ROUTES = {"GET /api/audit/verify": 12, "GET /api/audit/report": 24}

# --- hostile values ------------------------------------------------------------------------------


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    10**40,
    1e308,
    -1e-320,
    1.5,
    "",
    " ",
    "x" * 100_000,
    "ünïcødé ☃ 日本語 😀",
    "😀" * 300,
    "\x00\x01\x02\x1f\x7f",
    "line\nbreak\r\ttab",
    "\u202eright-to-left\u200b",
    "İ" * 254,  # lower() makes it longer
    "../../etc/passwd",
    "%00%2e%2e%2F",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "a@b.c",
    "admin",
    "0" * 32,
    [],
    ["x"] * 500,
    [None, 1, "a", {}],
    {},
    {"$gt": ""},
    _nested(20),
    _nested(40, "deep"),
]

# Raw bodies (bytes): not JSON, not an object, too deep, too big, odd encodings.
MB = 1024 * 1024
RAW_BODIES: list[bytes] = [
    b"",
    b" ",
    b"not json",
    b"title=x&topic=y",
    b"\x00\xff\xfe\x80",
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b"{",
    b"{}",
    b"[]",
    b'"text"',
    b"1",
    b"-0",
    b"1e999",
    b"NaN",
    b"Infinity",
    b"null",
    b"true",
    b'{"a": 1, "a": 2}',
    b'{"value": "\\ud800"}',
    b'{"value": NaN}',
    b'{"' + "ключ".encode() + b'": "\xe2\x98\x83"}',
    b'{"a": ' * 5000 + b"1" + b"}" * 5000,
    b"[" * 100_000,
    b'{"value": "' + b"x" * MB + b'"}',
    b"\x00" * MB,
]

PATH_VALUES: list[str] = [
    "x" * 3000,
    "x" * 300,
    "0" * 32,
    "A" * 32,
    "ünïcødé☃",
    "😀",
    "..",
    ".",
    "%2e%2e",
    "%2F",
    "..%2F..%2Fetc",
    "%00",
    "%0A",
    "%FF",
    "%ZZ",
    "%25",
    "a%20b",
    "a b",
    "-1",
    "0",
    "null",
    "{id}",
    "'",
    "email%23x",
    "user:x",
    "__proto__",
]

QUERY_STRINGS: list[str] = [
    "limit=1&limit=500",
    "limit=",
    "limit",
    "limit=0",
    "limit=-1",
    "limit=1.5",
    "limit=1e3",
    "limit=99999999999999999999999999",
    "limit=" + "9" * 5000,
    "limit=ten",
    "limit=%00",
    "limit=%D9%A3",  # an Arabic-Indic digit
    "cursor=",
    "cursor=.",
    "cursor=...",
    "cursor=garbage",
    "cursor=%FF%FE",
    "cursor=" + "A" * 4000,
    "cursor=eyJpZCI6IngifQ.AAAAAAAAAAAAAAAAAAAAAA",
    "cursor=W10.x",
    "cursor=bnVsbA",
    "status=",
    "status=DRAFT&status=NOPE",
    "status=%E2%98%83",
    "state=",
    "state=failed&state=done",
    "date=2026-02-30",
    "date=9999-12-31",
    "date=0000-01-01",
    "date=%00",
    "week=2026-W00",
    "week=2026-W99",
    "week=0000-W01",
    "week=9999-W52",
    "since=not-a-date",
    "since=0001-01-01T00:00:00Z",
    "until=0001-01-01T00:00:00Z",
    "since=9999-12-31T23:59:59Z",
    "until=9999-12-31T23:59:59-23:59",
    "since=9999-12-31T23:59:59-23:59&until=9999-12-31T23:59:59-23:59",
    "since=0001-01-01T00:00:00%2B14:00&until=0001-01-01T00:00:00%2B14:00",
    "since=2026-11-28T02:00:00Z&until=2026-11-27T02:00:00Z",
    "since=-1&until=1e20",
    "days=0",
    "days=-5",
    "days=1.5",
    "days=abc",
    "days=99999999999999999999",
    "user_id=" + "u" * 300,
    "user_id=%00",
    "action=..",
    "action=" + "a." * 200,
    "category=nope",
    "resource_type=article",
    "resource_type=article&resource_id=" + "r" * 300,
    "&&&=&=x&%3D=%26",
    "%E2%98%83=%E2%98%83",
]


def _signed_elsewhere(**claims: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": "someone",
        "role": "admin",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 3600,
        "iss": "inkwell",
        "aud": "inkwell-api",
        **claims,
    }
    return jwt.encode(payload, "another-key-" + "x" * 40, algorithm="HS256")


def _unsigned() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"sub": "x", "role": "admin"}).encode()).rstrip(b"=").decode()
    return f"{header}.{body}."


def _bad_authorizations(good: str) -> list[str]:
    return [
        "",
        "Bearer",
        "Bearer ",
        "Bearer  x",
        "bearer " + good,
        "BEARER " + good,
        "Bearer " + good + " trailing",
        "Bearer " + good + "x",
        "Bearer " + good[:-3],
        "Basic dXNlcjpwYXNz",
        "Token " + good,
        "Bearer x.y.z",
        "Bearer ....",
        "Bearer ünïcødé",
        "Bearer \u2028\x00",
        "Bearer " + "a" * 20_000,
        "Bearer " + _signed_elsewhere(),
        "Bearer " + _signed_elsewhere(jti="j" * 5000),
        "Bearer " + _unsigned(),
        "Bearer null",
    ]


BAD_CONTENT_TYPES = [
    "text/plain",
    "application/xml",
    "garbage",
    "",
    "application/json; charset=ünï",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "*/*",
    "application/json, text/plain",
]


# --- the app's routes ----------------------------------------------------------------------------


class Route:
    """One route of the app with a concrete path (its parameters' values) and a valid body."""

    def __init__(self, method: str, pattern: str) -> None:
        self.method = method
        self.pattern = pattern
        self.params = [p[1:-1] for p in pattern.split("/") if p.startswith("{")]
        self.values = {p: "x" for p in self.params}
        self.base_query = ""
        self.body: Any = {}
        self.row_body: Any = None
        for row in ENDPOINTS:
            row_path, _, row_query = row.path.partition("?")
            parts, row_parts = pattern.split("/"), row_path.split("/")
            if (
                row.method == method
                and len(parts) == len(row_parts)
                and all(p == r or p.startswith("{") for p, r in zip(parts, row_parts, strict=True))
            ):
                self.values = {p[1:-1]: r for p, r in zip(parts, row_parts, strict=True) if p.startswith("{")}
                self.base_query = row_query
                self.row_body = row.body
                break

    def __str__(self) -> str:
        return f"{self.method} {self.pattern}"

    def path(self, api: Any, override: dict[str, str] | None = None, query: str | None = None) -> str:
        values = {k: fill(api, v) for k, v in self.values.items()}
        values.update(override or {})
        path = self.pattern
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        query = self.base_query if query is None else query
        return path + ("?" + query if query else "")


def app_routes() -> list[Route]:
    import app as app_module

    return [
        Route(method, path) for path, entries in sorted(app_module.app.routes.items()) for method in sorted(entries)
    ]


class Fuzzer:
    """Sends requests through the shared Api with tokens minted directly (the login route itself
    is fuzzed with wrong passwords, which would lock the roles' emails and the test client's IP),
    and records every answer that breaks the rules."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.sent = 0
        self.failures: list[str] = []
        for role in ROLES:
            if role != ANONYMOUS:
                self.mint(role)

    def mint(self, role: str) -> str:
        from chalicelib import config, secret, timeutil
        from chalicelib.auth import service, tokens

        user = self.api.user(role)
        token, claims = tokens.issue(
            user["id"], user["role"], secret.get(config.JWT_SECRET), timeutil.now(), config.get().jwt_ttl_seconds
        )
        service.sessions().create(claims.jti, user, claims.exp)
        self.api.tokens[role] = token
        return token

    def send(
        self,
        label: str,
        method: str,
        path: str,
        role: str,
        raw: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        hdrs = {"content-type": "application/json", **(headers or {})}
        if role != ANONYMOUS and "authorization" not in hdrs:
            hdrs["authorization"] = f"Bearer {self.api.tokens[role]}"
        self.sent += 1
        try:
            response = self.api.client.http.request(method, path, headers=hdrs, body=raw)
        except Exception as exc:  # the test client raises only when the app did
            self.failures.append(f"{label} as {role}: raised {exc!r}"[:400])
            return
        if method == "POST" and path.startswith("/api/auth/logout") and response.status_code == 204:
            self.mint("admin" if role == ANONYMOUS else role)  # revoked now (odd headers carry admin's)
        problem = _problem(method, path, response)
        if problem:
            self.failures.append(f"{label} as {role}: {problem}"[:600])


def _problem(method: str, path: str, response: Any) -> str | None:
    status = response.status_code
    text = response.body[:300] if isinstance(response.body, bytes) else str(response.body)[:300]
    if status == 503 and path.startswith("/api/queues/health"):
        data = json.loads(response.body)
        return None if data.get("status") == "unhealthy" else f"503 {text!r}"
    if status >= 500:
        return f"{status} {text!r}"
    if 400 <= status < 500:
        try:
            data = json.loads(response.body)
        except ValueError:
            return f"{status} without a JSON body: {text!r}"
        if not (isinstance(data, dict) and isinstance(data.get("Code"), str) and isinstance(data.get("Message"), str)):
            return f"{status} without Code/Message: {text!r}"
    return None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def body_cases(route: Route, api: Any) -> list[tuple[str, bytes]]:
    """(label, raw body) pairs for one route: the raw bodies, then each field of its valid body
    replaced by each hostile value, and a few objects with odd keys."""
    valid = fill_body(api, route.row_body) if isinstance(route.row_body, dict) else {}
    cases = [(f"raw body {raw[:24]!r}", raw) for raw in RAW_BODIES]
    fields = list(valid) or ["value"]
    for name in fields:
        for value in HOSTILE_VALUES:
            cases.append((f"{name}={json.dumps(value)[:40]}", _dumps({**valid, name: value})))
    cases += [
        ("field deep 5000", _dumps(valid)[:-1] + b', "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("field key unicode", _dumps({**valid, "ключ☃": 1})),
        ("field key empty", _dumps({**valid, "": 1})),
        ("field key control", _dumps({**valid, "\x00": 1})),
        ("all fields null", _dumps(dict.fromkeys(fields))),
    ]
    return cases


def random_cases(rng: random.Random, route: Route, api: Any, n: int) -> list[tuple[str, str, bytes]]:
    """`n` seeded variants: (label, path, raw body) mixing an odd path parameter, an odd query
    string and a mutated body."""
    valid = fill_body(api, route.row_body) if isinstance(route.row_body, dict) else {}
    out = []
    for _ in range(n):
        override = {p: rng.choice(PATH_VALUES) for p in route.params if rng.random() < 0.7}
        query = "&".join(rng.sample(QUERY_STRINGS, rng.randint(0, 3)))
        body = dict(valid)
        for name in rng.sample(list(valid), rng.randint(0, len(valid))) if valid else []:
            body[name] = rng.choice(HOSTILE_VALUES)
        if rng.random() < 0.3:
            body[rng.choice(["surprise", "ü", "value", "__class__"])] = rng.choice(HOSTILE_VALUES)
        raw = _dumps(body) if rng.random() < 0.8 else rng.choice(RAW_BODIES[:22])
        label = f"random path={override!r:.60} query={query[:60]!r} body={raw[:40]!r}"
        out.append((label, route.path(api, override, query or None), raw))
    return out


# --- REST ----------------------------------------------------------------------------------------


@pytest.fixture
def api(shared_api):
    return shared_api  # one moto for the module: nothing here needs a clean table


@pytest.fixture
def fuzzer(api) -> Fuzzer:
    return Fuzzer(api)


def _report(fuzzer: Fuzzer) -> str:
    return f"{len(fuzzer.failures)} of {fuzzer.sent} cases broke the rules:\n" + "\n".join(fuzzer.failures[:40])


def rest_cases(route: Route, api: Any, rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(label, path, raw body) of every hostile request for one route and role."""
    base = route.path(api)
    valid = _dumps(fill_body(api, route.row_body)) if route.row_body is not None else b""
    if route.row_body is not None:  # every field of its body, each hostile value
        bodies = body_cases(route, api)
    elif route.method != "GET":  # takes no body: what if one comes anyway
        bodies = [(f"raw body {r[:24]!r}", r) for r in RAW_BODIES]
    else:
        ignored = [b"not json", RAW_BODIES[-3], RAW_BODIES[-2], b'{"value": "\\ud800"}']
        bodies = [(f"raw body {r[:24]!r}", r) for r in ignored]
    cases = [(label, base, raw) for label, raw in bodies]
    for param in route.params:
        for value in PATH_VALUES:
            cases.append((f"{param}={value[:40]!r}", route.path(api, {param: value}), valid))
    if route.method == "GET":
        queries = QUERY_STRINGS
        if str(route) in SLOW_ROUTES:
            queries = rng.sample(QUERY_STRINGS, SLOW_ROUTES[str(route)])
        for query in queries:
            joined = "&".join(q for q in (route.base_query, query) if q)
            cases.append((f"?{query[:60]}", route.path(api, query=joined), b""))
    return cases + random_cases(rng, route, api, RANDOM_CASES_PER_ROUTE_AND_ROLE)


def _refused(fuzzer: Fuzzer, route: Route, role: str) -> bool:
    """Whether `role` is refused (401/403) by the route's guard even with valid input."""
    raw = _dumps(fill_body(fuzzer.api, route.row_body)) if route.row_body is not None else b""
    hdrs = {"content-type": "application/json"}
    if role != ANONYMOUS:
        hdrs["authorization"] = f"Bearer {fuzzer.api.tokens[role]}"
    response = fuzzer.api.client.http.request(route.method, route.path(fuzzer.api), headers=hdrs, body=raw)
    if route.method == "POST" and route.pattern == "/api/auth/logout" and response.status_code == 204:
        fuzzer.mint(role)
    return response.status_code in (401, 403)


def _fresh_audit_trail() -> None:
    """Empty the audit tables. Every fuzzed request adds to the trail, and `/api/audit/verify`
    and `/report` read it whole (seconds per call on moto after a few thousand requests): each
    route starts with an empty one, so the run stays short."""
    from chalicelib import aws, catalog, config
    from infra import provision

    client = aws.client("dynamodb")
    for name in ("audit_events", "audit_digests"):
        physical = config.get().resource_name(name)
        client.delete_table(TableName=physical)
        client.create_table(**provision.table_kwargs(catalog.table(name), physical))


@pytest.mark.parametrize("role", ROLES)
def test_no_hostile_body_path_or_query_yields_a_5xx(fuzzer, api, role):
    """A role the route's guard refuses gets a seeded sample (the guard must hold under hostile
    input); a role it lets through gets every case."""
    rng = random.Random(f"{SEED}-{role}")
    for route in app_routes():
        _fresh_audit_trail()
        cases = rest_cases(route, api, rng)
        if _refused(fuzzer, route, role):
            cases = rng.sample(cases, min(len(cases), REFUSED_CASES_PER_ROUTE))
        for label, path, raw in cases:
            fuzzer.send(f"{route} {label}", route.method, path, role, raw)
    assert not fuzzer.failures, _report(fuzzer)


def test_no_odd_header_yields_a_5xx(fuzzer, api):
    for route in app_routes():
        good = fuzzer.api.tokens["admin"]
        _fresh_audit_trail()
        path = route.path(api)
        raw = _dumps(fill_body(api, route.row_body)) if route.row_body is not None else b""
        for auth in _bad_authorizations(good):
            fuzzer.send(
                f"{route} Authorization={auth[:40]!r}", route.method, path, ANONYMOUS, raw, {"authorization": auth}
            )
        for content_type in BAD_CONTENT_TYPES:
            for role in ("admin", ANONYMOUS):
                hdrs = {"content-type": content_type}
                fuzzer.send(f"{route} Content-Type={content_type!r}", route.method, path, role, raw, hdrs)
        odd = {"user-agent": "ü☃" * 500, "x-forwarded-for": "::1, ü, 999.1.1.1", "accept": "application/octet-stream"}
        fuzzer.send(f"{route} odd headers", route.method, path, "admin", raw, odd)
    assert not fuzzer.failures, _report(fuzzer)


# --- WebSocket -----------------------------------------------------------------------------------


@pytest.fixture
def gw(api, monkeypatch) -> Gateway:
    import app as app_module
    from chalicelib.realtime import sender as sender_module

    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return Gateway(app_module, fake)


def _room_values(article: str) -> list[Any]:
    return [
        None,
        0,
        True,
        [],
        {},
        ["admin"],
        "",
        " ",
        "admin",
        "ADMIN",
        "lobby",
        "user:",
        "user:x" * 40,
        f"article:{article}",
        "article:" + "0" * 32,
        "article:" + "F" * 32,
        "article:ünï",
        "article:\x00",
        "\ud800",
        "☃" * 100,
        "x" * 101,
    ]


AFTER_VALUES: list[Any] = [None, -1, 0, 1, 1.5, "3", True, [], {}, 10**15, 10**15 + 1, 10**40, 1e308]


def ws_frames(article: str, rng: random.Random) -> list[Any]:
    """Frames as sent: a str is the raw text, anything else is sent as JSON."""
    frames: list[Any] = [
        "",
        " ",
        "not json",
        "\x00\x01",
        "{",
        "[]",
        "null",
        "1",
        '"ping"',
        "true",
        "NaN",
        '{"action": "ping", "action": 7}',
        '{"action": "\\ud800"}',
        '{"action": "subscribe", "room": "\\udfff"}',
        "\ud800",
        '{"action":"ping"}\ud800',
        "x" * (32 * 1024 + 1),
        json.dumps({"action": "ping", "pad": "x" * 200_000}),
        "[" * 50_000,
        '{"a":' * 5000,
        json.dumps(_nested(200)),
        bytes(range(256)).decode("latin-1"),
        {},
        {"action": None},
        {"action": 7},
        {"action": ["ping"]},
        {"action": {"ping": 1}},
        {"action": ""},
        {"action": "PING"},
        {"action": "dance"},
        {"action": "x" * 10_000},
        {"action": "ping", "extra": 1},
        {"action": "rooms", "room": "admin"},
        {"action": "__class__"},
    ]
    for action in ("subscribe", "unsubscribe", "resume"):
        for room in _room_values(article):
            frame: dict[str, Any] = {"action": action, "room": room}
            if action == "resume":
                frame["after"] = rng.choice(AFTER_VALUES)
            frames.append(frame)
        frames.append({"action": action})
    for after in AFTER_VALUES:
        frames.append({"action": "resume", "room": f"article:{article}", "after": after})
    frames += [rng.choice(HOSTILE_VALUES) for _ in range(10)]
    frames += [
        {"action": rng.choice(["subscribe", "resume", "ping", "rooms"]), **_random_fields(rng)} for _ in range(20)
    ]
    return frames


def _random_fields(rng: random.Random) -> dict[str, Any]:
    return {
        name: rng.choice(HOSTILE_VALUES) for name in rng.sample(["room", "after", "data", "seq"], rng.randint(0, 3))
    }


def _send_raw(gw: Gateway, cid: str, event: dict[str, Any]) -> list[Any]:
    gw.management.take(cid)
    gw.app.ws_message(event, Context())
    return gw.management.take(cid)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_no_hostile_frame_crashes_the_websocket_handler(fuzzer, api, gw, role, monkeypatch):
    from chalicelib import config
    from chalicelib.realtime import live

    monkeypatch.setenv(config.WS_FRAME_BURST, "100000")  # every frame reaches the handler (limits: elsewhere)
    monkeypatch.setenv(config.QUOTA_TICKETS, "100000")  # the REST fuzzing before may have spent the minute's

    article = fill(api, "{article_id}")
    response = api.post("/api/realtime/ticket", as_=role)
    cid, connected = gw.connect(ticket=json.loads(response.body)["ticket"])
    assert connected["statusCode"] == 200, connected
    rng = random.Random(f"{SEED}-ws-{role}")
    problems = []
    frames = ws_frames(article, rng)
    events = [(repr(f)[:80], ws_event("$default", cid, body=f)) for f in frames]
    for raw in (b"\x00\xff\x80binary", b'{"action":"ping"}', bytes(range(256)) * 200):
        event = ws_event("$default", cid, body=base64.b64encode(raw).decode())
        event["isBase64Encoded"] = True
        events.append((f"binary {raw[:20]!r}", event))
    no_body = ws_event("$default", cid)
    events.append(("no body", no_body))
    for label, event in events:
        try:
            replies = _send_raw(gw, cid, event)
        except Exception as exc:
            problems.append(f"{label}: raised {exc!r}"[:300])
            continue
        if not replies or not all(isinstance(r, dict) and isinstance(r.get("type"), str) for r in replies):
            problems.append(f"{label}: replies {replies!r}"[:300])
        for reply in replies:
            if isinstance(reply, dict) and reply.get("type") == "error" and not isinstance(reply.get("message"), str):
                problems.append(f"{label}: error frame without a message {reply!r}"[:300])
        if live.connections().get(cid) is None:
            problems.append(f"{label}: the connection record is gone")
            break
    assert gw.send(cid, {"action": "ping"}) == [{"type": "pong"}]
    assert not problems, f"{len(problems)} of {len(events)} frames:\n" + "\n".join(problems[:40])


CONNECT_QUERIES: list[Any] = [
    None,
    {},
    {"ticket": ""},
    {"token": ""},
    {"ticket": " "},
    {"ticket": "x" * 128},
    {"ticket": "x" * 129},
    {"ticket": "x" * 100_000},
    {"ticket": "ünïcødé☃"},
    {"ticket": "\x00"},
    {"ticket": "\ud800"},
    {"token": "\ud800"},
    {"ticket": "%00"},
    {"token": "x.y.z"},
    {"token": "Bearer x"},
    {"token": "a" * 100_000},
    {"token": _unsigned()},
    {"token": _signed_elsewhere()},
    {"token": _signed_elsewhere(jti="j" * 5000)},
    {"ticket": "made-up", "token": "not.a.jwt"},
    {"other": "1"},
    {"ticket": "a,b"},
]


def test_connect_with_odd_query_strings_is_refused_never_a_crash(gw):
    from chalicelib.realtime import live

    problems = []
    for query in CONNECT_QUERIES:
        cid = uuid.uuid4().hex[:16]
        event = ws_event("$connect", cid)
        event["queryStringParameters"] = query
        try:
            response = gw.app.ws_connect(event, Context())
        except Exception as exc:
            problems.append(f"{query!r:.80}: raised {exc!r}"[:300])
            continue
        if not (isinstance(response, dict) and response.get("statusCode") in (401, 403)):
            problems.append(f"{query!r:.80}: answered {response!r}"[:300])
        if live.connections().get(cid) is not None:
            problems.append(f"{query!r:.80}: a connection record exists")
    assert not problems, "\n".join(problems)
