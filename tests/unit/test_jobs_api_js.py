"""The browser client's job calls (chalicelib/static/realtime.js: JobsApi) under Node, with a fake
fetch: the paths and bodies it sends, a bulk action followed to its end, a refresh after a 401."""

from __future__ import annotations

from pathlib import Path

from tests.unit import node_script

MODULE = Path(__file__).resolve().parents[2] / "chalicelib" / "static" / "realtime.js"

SCRIPT = r"""
const m = await import(process.argv[1]);
const calls = [];
let token = "old";
const answers = [];
globalThis.fetch = async (url, init) => {
  calls.push([init.method, url, init.headers.Authorization, init.body ? JSON.parse(init.body) : null]);
  const [status, body] = answers.shift() || [200, {}];
  return { status, ok: status < 300, json: async () => body };
};
const jobs = new m.JobsApi({ token: () => token, refresh: async () => { token = "new"; return true; }, apiUrl: "http://x" });
const out = {};
answers.push([200, { items: [], next_cursor: null }]);
await jobs.search({ q: "timed out", queue: "articles", state: "" });
answers.push([401, {}], [200, { items: [], attempts: [] }]);
await jobs.logs("j1");
answers.push([202, { id: "j2" }]);
out.copy = await jobs.duplicate("j1");
answers.push([200, { matched: 2, done: 2, next_cursor: "c1" }], [200, { matched: 1, done: 0 }]);
out.total = await jobs.bulk("emails", { action: "retry" });
answers.push([400, { Message: "state: no" }]);
try { await jobs.bulk("emails", { action: "promote", state: "failed" }); } catch (err) { out.error = [err.status, err.message]; }
out.calls = calls;
console.log(JSON.stringify(out));
"""


def test_the_browser_client_makes_the_job_calls():
    out = node_script.run(SCRIPT, MODULE)
    calls = out["calls"]
    assert calls[0] == ["GET", "http://x/api/jobs?q=timed+out&queue=articles", "Bearer old", None]
    assert calls[1][:3] == ["GET", "http://x/api/jobs/j1/logs", "Bearer old"]
    assert calls[2][:3] == ["GET", "http://x/api/jobs/j1/logs", "Bearer new"]  # refreshed after the 401
    assert calls[3][:2] == ["POST", "http://x/api/jobs/j1/duplicate"] and out["copy"] == {"id": "j2"}
    assert calls[4][1:] == ["http://x/api/queues/emails/bulk", "Bearer new", {"action": "retry"}]
    assert calls[5][3] == {"action": "retry", "cursor": "c1"}
    assert out["total"] == {"action": "retry", "matched": 3, "done": 2, "calls": 2, "more": False}
    assert out["error"] == [400, "state: no"]
