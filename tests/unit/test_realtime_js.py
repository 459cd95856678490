"""The browser client (chalicelib/static/realtime.js) under Node, with a fake WebSocket and fetch:
greeting, de-duplication, reconnect with resume, re-subscription, refused credentials."""

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
  open() { this.readyState = 1; this.onopen(); }
  recv(msg) { this.onmessage({ data: JSON.stringify(msg) }); }
  close() { this.readyState = 3; this.onclose({}); }
}
globalThis.WebSocket = FakeSocket;
let ticketStatus = 200;
let tickets = 0;
globalThis.fetch = async (url, init) => ({
  status: ticketStatus, ok: ticketStatus === 200,
  json: async () => ({ ticket: `t${++tickets}`, expires_at: "x", url: "ws://gw/" }),
});
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const out = {};

const rt = new m.RealtimeClient({ token: "jwt", backoffFirst: 0.01, backoffCap: 0.02, gapWaitMs: 20 });
const dashboard = [], statuses = [], alerts = [], states = [];
rt.onDashboardEvent((e) => dashboard.push(e.seq));
rt.onSystemAlert((a) => alerts.push([a.level, a.message, a.details]));
rt.onConnectionChange((c) => states.push(c));
rt.start();
await tick();
const ws1 = sockets[0];
out.url1 = ws1.url;
ws1.open();
out.greeting1 = ws1.sent.splice(0);
rt.onArticleStatus("a1", (s) => statuses.push([s.status, s.seq]));
out.subscribe = ws1.sent.splice(0);
ws1.recv({ type: "rooms", rooms: { admin: 5, "user:u": 0 } });
ws1.recv({ type: "subscribed", room: "article:a1", seq: 2 });
const ev = (room, seq, type = "job.progress", data = {}) => ({ type, room, seq, ts: "t", data });
ws1.recv(ev("admin", 6));
ws1.recv(ev("admin", 7));
ws1.recv(ev("admin", 7));
ws1.recv(ev("article:a1", 3, "article.status", { article_id: "a1", status: "PROCESSING", job_id: "j" }));
ws1.recv(ev("admin", 8, "system.alert", { level: "warning", message: "disk", disk: "/" }));
ws1.close();
await tick(60);
const ws2 = sockets[1];
out.url2 = ws2.url;
ws2.open();
out.greeting2 = ws2.sent.splice(0);
ws2.recv(ev("admin", 7));
ws2.recv(ev("admin", 10));
ws2.recv(ev("article:a1", 3, "article.status", { article_id: "a1", status: "PROCESSING", job_id: "j" }));
ws2.recv(ev("article:a1", 4, "article.status", { article_id: "a1", status: "PUBLISHED", job_id: "j" }));
out.beforeResumed = [...dashboard];
ws2.recv({ type: "resumed", room: "admin", count: 2, complete: true });
out.afterResumed = [...dashboard];
ws2.recv(ev("admin", 13));
await tick(50);
out.gapResume = ws2.sent.splice(0);
ws2.recv("not json");
out.dashboard = dashboard; out.statuses = statuses; out.alerts = alerts; out.states = states;
rt.close();

ticketStatus = 401;
const errors = [];
const refused = new m.RealtimeClient({ token: "revoked" });
refused.onError((e) => errors.push(e));
const before = sockets.length;
refused.start();
await tick(30);
out.refused = { errors, newSockets: sockets.length - before };
console.log(JSON.stringify(out));
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


def test_it_connects_with_a_ticket_and_greets(run):
    assert run["url1"] == "ws://gw/?ticket=t1"
    assert run["greeting1"] == [{"action": "rooms"}]
    assert run["subscribe"] == [{"action": "subscribe", "room": "article:a1"}]


def test_it_reconnects_with_a_new_ticket_resubscribes_and_resumes_every_room(run):
    assert run["url2"] == "ws://gw/?ticket=t2"
    assert run["greeting2"] == [
        {"action": "rooms"},
        {"action": "subscribe", "room": "article:a1"},
        {"action": "resume", "room": "admin", "after": 8},
        {"action": "resume", "room": "user:u", "after": 0},
        {"action": "resume", "room": "article:a1", "after": 3},
    ]
    assert run["states"] == [True, False, True, False]  # the last: close()


def test_each_event_is_delivered_once_and_in_order(run):
    # (8 was a system alert, heard before the drop)
    assert run["beforeResumed"] == [6, 7]  # 10 waits for the hole at 9
    assert run["afterResumed"] == [6, 7, 10]  # the replay did not bring 9: gone for good
    assert run["dashboard"] == [6, 7, 10]  # 13 waits for 11 and 12
    assert run["statuses"] == [["PROCESSING", 3], ["PUBLISHED", 4]]
    assert run["alerts"] == [["warning", "disk", {"disk": "/"}]]


def test_a_gap_that_does_not_fill_itself_is_asked_for(run):
    assert run["gapResume"] == [{"action": "resume", "room": "admin", "after": 10}]


def test_refused_credentials_stop_the_client(run):
    assert run["refused"]["newSockets"] == 0
    assert run["refused"]["errors"][0]["fatal"] is True
