"""The browser client (chalicelib/static/realtime.js) under Node, with a fake WebSocket and fetch:
greeting, de-duplication, reconnect with resume, re-subscription, refused credentials, history()."""

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

// history(): earlier alerts of the admin room, asked for page by page on the same connection
ticketStatus = 200;
const ago = (ms) => new Date(Date.now() - ms).toISOString();
const H = 3_600_000;
const hrt = new m.RealtimeClient({ token: "jwt", gapWaitMs: 20 });
const heard = [], liveSeqs = [];
hrt.onSystemAlert((a) => heard.push(a.seq));
hrt.onDashboardEvent((e) => liveSeqs.push(e.seq));
hrt.start();
await tick();
const hws = sockets[sockets.length - 1];
hws.open();
hws.sent.splice(0);
const earlier = hrt.history("admin", { types: ["system.alert"], limit: 5 });
out.historyBeforePosition = hws.sent.splice(0);
hws.recv({ type: "rooms", rooms: { admin: 1200, "user:u": 0 } });
out.historyPage1 = hws.sent.splice(0);
const at = (seq, ts, type = "activity", data = {}) => ({ type, room: "admin", seq, ts, data });
const alert = (seq, ts, message) => at(seq, ts, "system.alert", { level: "warning", message });
hws.recv(alert(1201, ago(0), "live"));
for (let seq = 701; seq <= 1200; seq++) {
  hws.recv(seq === 900 ? alert(seq, ago(H), "one hour ago") : seq === 1100 ? alert(seq, ago(H / 6), "ten minutes ago") : at(seq, ago(2 * H)));
}
hws.recv({ type: "resumed", room: "admin", count: 500, complete: false, next_after: 1200 });
out.historyPage2 = hws.sent.splice(0);
hws.recv(at(1203, ago(0)));  // overtakes 1202 while page 2 is in flight
await tick(50);
out.gapWhileHistory = hws.sent.splice(0);
for (let seq = 201; seq <= 700; seq++) {
  hws.recv(seq === 650 ? alert(seq, ago(3 * H), "three hours ago") : seq === 240 ? alert(seq, ago(30 * H), "yesterday") : at(seq, ago(seq < 300 ? 30 * H : 4 * H)));
}
hws.recv({ type: "resumed", room: "admin", count: 500, complete: false, next_after: 700 });
out.afterHistory = hws.sent.splice(0);
const got = await earlier;
out.history = got.map((e) => [e.seq, e.data.message]);
hws.recv(at(1202, ago(0)));
hws.recv({ type: "resumed", room: "admin", count: 2, complete: true });
out.liveAlerts = heard;
out.liveDashboard = liveSeqs;
out.cursorLast = hrt.cursors.get("admin").last;
const empty = await hrt.history("user:u", {});
out.emptyHistory = { events: empty, sent: hws.sent.splice(0) };
hrt.close();

// a history survives a reconnect (its page is asked again after the cursor's resume); a reply
// that never comes resolves it with what it has
const frt = new m.RealtimeClient({ token: "jwt", backoffFirst: 0.01, backoffCap: 0.02, resumeTimeoutMs: 40 });
frt.start();
await tick();
const f1 = sockets[sockets.length - 1];
f1.open();
f1.sent.splice(0);
const across = frt.history("admin", { types: ["system.alert"] });
f1.recv({ type: "rooms", rooms: { admin: 10 } });
out.faultPage = f1.sent.splice(0);
f1.close();
await tick(60);
const f2 = sockets[sockets.length - 1];
f2.open();
out.faultGreeting = f2.sent.splice(0);
f2.recv({ type: "resumed", room: "admin", count: 0, complete: true });
out.faultPageAgain = f2.sent.splice(0);
for (let seq = 1; seq <= 10; seq++) f2.recv(seq % 5 === 3 ? alert(seq, ago(H), `a${seq}`) : at(seq, ago(H)));
f2.recv({ type: "resumed", room: "admin", count: 10, complete: true });
out.faultHistory = (await across).map((e) => e.seq);
const lost = frt.history("admin", {});
out.lostPage = f2.sent.splice(0);
const t0 = Date.now();
out.lostHistory = (await lost).length;
out.lostWaitedMs = Date.now() - t0;
frt.close();
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def run() -> dict:
    return node_script.run(SCRIPT, MODULE)


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


def test_history_waits_for_the_rooms_position_then_asks_for_the_page_before_it(run):
    assert run["historyBeforePosition"] == []
    assert run["historyPage1"] == [{"action": "resume", "room": "admin", "after": 700}]
    # the reply to a history page is not the cursor's: no resume after its next_after
    assert run["historyPage2"] == [{"action": "resume", "room": "admin", "after": 200}]


def test_history_returns_the_newest_matching_events_since_oldest_first_and_stops_there(run):
    # 240 is older than 24 h; page 2 reached that far, so no third page is asked for
    assert run["history"] == [[650, "three hours ago"], [900, "one hour ago"], [1100, "ten minutes ago"]]
    assert run["afterHistory"] == [{"action": "resume", "room": "admin", "after": 1201}]


def test_history_leaves_live_delivery_alone(run):
    assert run["liveAlerts"] == [1201]  # the replayed alerts never reach the live handlers
    assert run["liveDashboard"] == [1202, 1203]  # the gap waited for the history page, then filled
    assert run["gapWhileHistory"] == []  # one resume of a room in flight at a time
    assert run["cursorLast"] == 1203


def test_history_of_a_room_with_nothing_before_it_is_empty_without_a_request(run):
    assert run["emptyHistory"] == {"events": [], "sent": []}


def test_history_survives_a_reconnect_and_a_reply_that_never_comes(run):
    assert run["faultPage"] == [{"action": "resume", "room": "admin", "after": 0}]
    # the new connection resumes the cursor first, then asks for the history page again
    assert run["faultGreeting"] == [{"action": "rooms"}, {"action": "resume", "room": "admin", "after": 10}]
    assert run["faultPageAgain"] == [{"action": "resume", "room": "admin", "after": 0}]
    assert run["faultHistory"] == [3, 8]
    assert run["lostPage"] == [{"action": "resume", "room": "admin", "after": 0}]
    assert run["lostHistory"] == 0 and run["lostWaitedMs"] >= 30
