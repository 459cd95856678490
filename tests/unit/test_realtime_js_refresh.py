"""The browser client's access token (chalicelib/static/realtime.js) under Node, with a fake
fetch and WebSocket: it refreshes before the token expires and after a 401 (then asks for a
fresh ticket and connects), shares one refresh between concurrent callers, refreshes through the
session cookie for a page, and stops when the session has ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit import node_script

MODULE = Path(__file__).resolve().parents[2] / "chalicelib" / "static" / "realtime.js"

SCRIPT = r"""
const m = await import(process.argv[1]);
const sockets = [];
class FakeSocket {
  static OPEN = 1;
  constructor(url) { this.url = url; this.sent = []; this.readyState = 0; sockets.push(this); }
  send(data) { this.sent.push(JSON.parse(data)); }
  close() { this.readyState = 3; if (this.onclose) this.onclose({}); }
}
globalThis.WebSocket = FakeSocket;
const calls = [];
let refreshes = 0;
const valid = new Set(["fresh-1", "fresh-2", "fresh-3", "fresh-4"]);
let refreshWorks = true;
const later = new Date(Date.now() + 15 * 60_000).toISOString();
globalThis.fetch = async (url, init) => {
  const auth = (init.headers || {}).Authorization || null;
  calls.push({ url, auth, body: init.body || null, session: (init.headers || {})["X-Inkwell-Session"] || null,
               credentials: init.credentials || null });
  if (url.endsWith("/api/auth/refresh")) {
    await new Promise((r) => setTimeout(r, 5));
    if (!refreshWorks) return { status: 401, ok: false, json: async () => ({}) };
    refreshes += 1;
    return { status: 200, ok: true, json: async () => ({ token: `fresh-${refreshes}`, expires_at: later,
      refresh_token: init.body.includes("refresh_token") ? `r${refreshes + 1}` : undefined }) };
  }
  const ok = valid.has(auth.replace("Bearer ", ""));
  return { status: ok ? 200 : 401, ok, json: async () => ({ ticket: `t-${auth}`, url: "ws://gw/" }) };
};
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const out = {};

// 1. before expiry: a token expiring in 61 s is refreshed a minute early (at once, here)
const tokens = [];
const early = new m.RealtimeClient({ token: "old", refreshToken: "r1", expiresAt: new Date(Date.now() + 61_000).toISOString(),
  onTokens: (t) => tokens.push(t.refresh_token) });
early.start();
await tick(1200);
out.early = { token: early.token, refreshToken: early.refreshToken, tokens,
  refreshBodies: calls.filter((c) => c.url.endsWith("/refresh")).map((c) => JSON.parse(c.body)) };
early.close();

// 2. after a 401: the ticket is refused for the expired token, the client refreshes and asks again
calls.length = 0;
const expired = new m.RealtimeClient({ token: "expired", refreshToken: "r2" });
expired.start();
await tick(50);
out.after401 = { calls: calls.map((c) => [c.url, c.auth]), socket: sockets[sockets.length - 1].url };
expired.close();

// 3. concurrent callers share one refresh (a refresh token works once)
const before = refreshes;
const shared = new m.RealtimeClient({ token: "x", refreshToken: "r9" });
const both = await Promise.all([shared.renew(), shared.renew()]);
out.shared = { refreshes: refreshes - before, tokens: both };
shared.close();

// 4. a page's session cookie: no refresh token in the body, the cookie header and same-origin credentials
calls.length = 0;
const page = new m.RealtimeClient({ token: "expired", cookieSession: true });
await page.renew();
out.cookie = calls.filter((c) => c.url.endsWith("/refresh")).map((c) => ({ body: c.body, session: c.session, credentials: c.credentials }));
page.close();

// 5. the session has ended: the refresh is refused, the client stops without a socket
refreshWorks = false;
const errors = [];
const ended = new m.RealtimeClient({ token: "expired", refreshToken: "r-old" });
ended.onError((e) => errors.push(e));
const socketsBefore = sockets.length;
ended.start();
await tick(50);
out.ended = { errors: errors.map((e) => [e.message, e.fatal]), newSockets: sockets.length - socketsBefore };
console.log(JSON.stringify(out));
process.exit(0);
"""


@pytest.fixture(scope="module")
def run() -> dict:
    return node_script.run(SCRIPT, MODULE)


def test_it_refreshes_a_minute_before_the_access_token_expires(run):
    assert run["early"]["refreshBodies"] == [{"refresh_token": "r1"}]
    assert run["early"]["token"] == "fresh-1" and run["early"]["refreshToken"] == "r2"
    assert run["early"]["tokens"] == ["r2"]


def test_after_a_401_it_refreshes_and_connects_with_a_fresh_ticket(run):
    assert run["after401"]["calls"] == [
        ["/api/realtime/ticket", "Bearer expired"],
        ["/api/auth/refresh", None],
        ["/api/realtime/ticket", "Bearer fresh-2"],
    ]
    assert run["after401"]["socket"] == "ws://gw/?ticket=t-Bearer%20fresh-2"


def test_concurrent_callers_share_one_refresh(run):
    assert run["shared"]["refreshes"] == 1
    assert run["shared"]["tokens"][0] == run["shared"]["tokens"][1]


def test_a_page_refreshes_through_the_session_cookie(run):
    assert run["cookie"] == [{"body": "{}", "session": "cookie", "credentials": "same-origin"}]


def test_an_ended_session_stops_the_client(run):
    assert run["ended"]["newSockets"] == 0
    assert run["ended"]["errors"] == [["ticket refused: HTTP 401", True]]


# --- two tabs of one origin: one session cookie, refreshed by both at once -------------------------

TABS_SCRIPT = r"""
const m = await import(process.argv[1]);
globalThis.WebSocket = class { static OPEN = 1; };
const tick = (ms) => new Promise((r) => setTimeout(r, ms));

// The browser's cookie jar, shared by the tabs: read when a request starts, written by Set-Cookie
// when its answer arrives. The server rotates the cookie on each refresh and, as the real one
// does, answers a used one with 401 and revokes the whole family.
const jar = { inkwell_refresh: "c1" };
const server = { used: new Set(), revoked: false, reuse: 0, issued: 1, presented: [] };
globalThis.fetch = async (url, init) => {
  const headers = init.headers || {};
  const cookie = headers["X-Inkwell-Session"] === "cookie" && init.credentials === "same-origin" ? jar.inkwell_refresh : null;
  server.presented.push(cookie);
  await tick(20); // the server's round trip: long enough for the other tab to start its own
  if (cookie === null || server.used.has(cookie) || server.revoked) {
    if (server.used.has(cookie)) server.reuse += 1;
    server.revoked = true;
    return { status: 401, ok: false, json: async () => ({ Code: "Unauthorized" }) };
  }
  server.used.add(cookie);
  server.issued += 1;
  jar.inkwell_refresh = `c${server.issued}`;
  return { status: 200, ok: true, json: async () => ({ token: `access-${server.issued}`,
    expires_at: new Date(Date.now() + 900_000).toISOString() }) };
};

// Web Locks: one holder of a name at a time across the origin's tabs, the others queue.
const locks = { names: [], held: new Map(),
  request(name, callback) {
    this.names.push(name);
    const run = (this.held.get(name) || Promise.resolve()).then(() => callback({ name, mode: "exclusive" }));
    this.held.set(name, run.catch(() => {}));
    return run;
  },
};
const reset = () => {
  jar.inkwell_refresh = "c1";
  Object.assign(server, { used: new Set(), revoked: false, reuse: 0, issued: 1, presented: [] });
};
const twoTabs = async () => {
  const tabs = [1, 2].map(() => new m.RealtimeClient({ token: "expired", cookieSession: true }));
  const tokens = await Promise.all(tabs.map((tab) => tab.renew()));
  return { tokens, reuse: server.reuse, revoked: server.revoked, presented: server.presented };
};
const out = {};

// Without Web Locks (an older browser): today's behaviour, the tabs race for the one cookie
reset();
out.unlocked = await twoTabs();

// With Web Locks: one refresh after the other, each presenting the cookie the last one set
reset();
Object.defineProperty(globalThis, "navigator", { value: { locks }, configurable: true });
out.locked = await twoTabs();
out.locked.lockNames = [...locks.names];

// A client with its own refresh token (not the cookie) does not wait for other tabs
locks.names.length = 0;
reset();
const own = new m.RealtimeClient({ token: "expired", refreshToken: "r1" });
await own.renew();
out.ownToken = { lockNames: [...locks.names] };

// The page's own refresh through the cookie (the dashboard's) shares the lock
locks.names.length = 0;
reset();
if (typeof m.refreshSession === "function") {
  const answers = await Promise.all([m.refreshSession(""), m.refreshSession("")]);
  out.page = { tokens: answers.map((a) => a && a.token), reuse: server.reuse, lockNames: [...locks.names] };
}
console.log(JSON.stringify(out));
process.exit(0);
"""


@pytest.fixture(scope="module")
def tabs() -> dict:
    return node_script.run(TABS_SCRIPT, MODULE)


def test_the_fake_server_refuses_a_used_cookie_so_two_tabs_racing_without_web_locks_collide(tabs):
    # the fallback where Web Locks are missing is today's behaviour: both present c1, one is reuse
    assert tabs["unlocked"]["presented"] == ["c1", "c1"]
    assert tabs["unlocked"]["reuse"] == 1 and tabs["unlocked"]["revoked"] is True


def test_two_tabs_refreshing_at_once_both_get_a_token_and_the_server_sees_no_reuse(tabs):
    locked = tabs["locked"]
    assert locked["tokens"] == ["access-2", "access-3"]
    assert locked["presented"] == ["c1", "c2"]  # each refresh presents the cookie the other one set
    assert locked["reuse"] == 0 and locked["revoked"] is False
    assert locked["lockNames"] == ["inkwell-refresh", "inkwell-refresh"]


def test_a_client_with_its_own_refresh_token_takes_no_lock(tabs):
    assert tabs["ownToken"]["lockNames"] == []


def test_the_pages_own_cookie_refresh_is_serialised_with_the_clients(tabs):
    assert tabs["page"] == {
        "tokens": ["access-2", "access-3"],
        "reuse": 0,
        "lockNames": ["inkwell-refresh", "inkwell-refresh"],
    }


# --- a page gone while its refresh was in flight (a reload, a closed tab) --------------------------

GONE_SCRIPT = r"""
const m = await import(process.argv[1]);
globalThis.WebSocket = class { static OPEN = 1; };
const sent = [];
globalThis.fetch = async (url, init) => {
  sent.push({ at: Date.now(), keepalive: init.keepalive === true, pending: storage.getItem(m.REFRESH_PENDING) });
  return { status: 200, ok: true, json: async () => ({ token: "access", expires_at: new Date(Date.now() + 900_000).toISOString() }) };
};
const locks = { request: (name, callback) => Promise.resolve().then(() => callback({ name })) };
const items = new Map();
const storage = { getItem: (k) => (items.has(k) ? items.get(k) : null), setItem: (k, v) => items.set(k, v),
                  removeItem: (k) => items.delete(k) };
const out = {};

// no refresh pending: it is sent at once, keepalive, marked pending while it runs
let started = Date.now();
await m.refreshSession("", locks, storage);
out.idle = { waited: sent[0].at - started, keepalive: sent[0].keepalive, marked: sent[0].pending !== null,
             left: storage.getItem(m.REFRESH_PENDING) };

// a page went away 200 ms before the wait would end: the next refresh waits out the rest
sent.length = 0;
storage.setItem(m.REFRESH_PENDING, String(Date.now() - m.REFRESH_PENDING_MS + 200));
started = Date.now();
await m.refreshSession("", locks, storage);
out.gone = { waited: sent[0].at - started, left: storage.getItem(m.REFRESH_PENDING) };

// a marker older than the wait (a page gone long ago) delays nothing
sent.length = 0;
storage.setItem(m.REFRESH_PENDING, String(Date.now() - 60_000));
started = Date.now();
await m.refreshSession("", locks, storage);
out.stale = { waited: sent[0].at - started };
console.log(JSON.stringify(out));
process.exit(0);
"""


@pytest.fixture(scope="module")
def gone() -> dict:
    return node_script.run(GONE_SCRIPT, MODULE)


def test_a_cookie_refresh_is_sent_keepalive_and_marked_pending_while_it_runs(gone):
    assert gone["idle"]["keepalive"] is True and gone["idle"]["marked"] is True
    assert gone["idle"]["waited"] < 100 and gone["idle"]["left"] is None


def test_the_next_refresh_waits_for_one_a_gone_page_left_in_flight(gone):
    assert 150 <= gone["gone"]["waited"] < 2000, gone
    assert gone["gone"]["left"] is None


def test_a_pending_mark_older_than_the_wait_delays_nothing(gone):
    assert gone["stale"]["waited"] < 100, gone
