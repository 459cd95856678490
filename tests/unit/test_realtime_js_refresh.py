"""The browser client's access token (chalicelib/static/realtime.js) under Node, with a fake
fetch and WebSocket: it refreshes before the token expires and after a 401 (then asks for a
fresh ticket and connects), shares one refresh between concurrent callers, refreshes through the
session cookie for a page, and stops when the session has ended."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

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
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, MODULE.as_uri()],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


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
