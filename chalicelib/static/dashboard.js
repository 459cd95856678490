// The queue dashboard's script: an ES module with no dependencies and no build step, served at
// /static/dashboard.js next to /dashboard. It signs in over the REST API in the browser variant:
// the refresh token lives in an HttpOnly cookie no script reads, the 15-minute access token only
// in this script's memory (refreshed through the cookie before it expires, after a 401 and on
// load, so a reload keeps the session), shows the four queues' stats and health, lists jobs by state with their
// detail, drives the control actions, and follows the admin room over the WebSocket through the
// shared browser client (/static/realtime.js, imported when needed): job and activity events
// update the page as they happen; a slow poll only refreshes the queue depths, which no event
// announces. It also draws each queue's last hour per minute (throughput, failures, p95 duration)
// as inline SVG, lists the schedules (with "run now") and the admin room's system alerts: those of
// the last 24 h asked for with the client's history() on load (then since the last load), then the live ones.
// Jobs are found by a search (an id, words of the error, filters: GET /api/jobs) or by the tabs; a
// job's page (`#job=<id>`, linked from the list, the alerts and the activity feed) shows its
// timeline, log lines, payload, result and actions; a bulk action applies to the tabs' queue and
// state, in bounded calls continued with their cursor, after a confirmation.

const QUEUES = ["articles", "analytics", "emails", "cleanup"];
const STATES = ["waiting", "delayed", "active", "completed", "failed", "cancelled"];
const NUMBERS = [
  ["waiting", "waiting"], ["high", "of them high"], ["active", "active"], ["delayed", "delayed"],
  ["completed", "completed"], ["failed", "failed"], ["cancelled", "cancelled"], ["dead_letter", "dead letters"],
  ["high_dead_letter", "high-priority dead letters"],
];
const POLL_MS = 15000;
const METRICS_POLL_MS = 60000;
const CHART = { width: 300, height: 70, minutes: 60 };
const FEED_MAX = 60;
const RENEW_BEFORE_MS = 60000; // refresh the access token a minute before it expires
const COOKIE_SESSION = { "X-Inkwell-Session": "cookie" };

const $ = (id) => document.getElementById(id);
const view = {
  token: null, // the access token: memory only
  renewing: null, // the refresh in flight (a refresh token works once: callers share it)
  user: null,
  queue: "articles",
  state: "failed",
  cursor: null,
  selected: null,
  search: null, // the search's filters while the list shows a search (GET /api/jobs), else null
  stats: {},
  health: {},
  rt: null,
  poller: null,
  metricsPoller: null,
  timers: {},
};

// --- small helpers ------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function later(name, fn, ms) {
  clearTimeout(view.timers[name]);
  view.timers[name] = setTimeout(fn, ms);
}

function clock(ts) {
  const d = ts ? new Date(ts) : new Date();
  return Number.isNaN(d.getTime()) ? "" : d.toTimeString().slice(0, 8);
}

function ago(ts) {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 1000));
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)}h ago`;
  return new Date(ts).toISOString().slice(0, 10);
}

async function api(method, path, body, retried = false) {
  const headers = { Authorization: `Bearer ${view.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && !retried && (await renew())) return api(method, path, body, true);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    signOut("Your session has ended; sign in again.");
    throw new Error("signed out");
  }
  return { status: response.status, ok: response.ok, data };
}

function problem(result) {
  return (result.data && result.data.Message) || `HTTP ${result.status}`;
}

// --- signing in ---------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...COOKIE_SESSION },
    body: JSON.stringify({ email: $("email").value.trim(), password: $("password").value }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("login-error").textContent = data.Message || `Sign-in failed (HTTP ${response.status})`;
    return;
  }
  if (data.user.role !== "admin") {
    $("login-error").textContent = "The dashboard is for admins only.";
    return;
  }
  keep(data);
  $("password").value = "";
  start(data.user);
}

// The access token, in memory; its refresh is due a minute before it expires.
function keep(session) {
  view.token = session.token;
  const due = new Date(session.expires_at).getTime() - Date.now() - RENEW_BEFORE_MS;
  later("renew", renew, Math.max(1000, Number.isFinite(due) ? due : 60000));
}

// A new access token through the session cookie (one tab at a time: the client's
// refreshSession); false when the session has ended.
function renew() {
  if (!view.renewing) {
    view.renewing = (async () => {
      try {
        const { refreshSession } = await import("/static/realtime.js");
        const session = await refreshSession();
        if (session) keep(session);
        return Boolean(session);
      } catch {
        return false;
      }
    })().finally(() => { view.renewing = null; });
  }
  return view.renewing;
}

// Logout ends the session on the server (and its cookie): with a fresh token if this one lapsed.
async function endSession(token) {
  const logout = (t) => fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${t}` } });
  const response = await logout(token);
  if (response.status === 401 && (await renew())) await logout(view.token);
}

function signOut(message = "") {
  if (view.token) endSession(view.token).catch(() => {});
  view.token = null;
  clearTimeout(view.timers.renew);
  if (view.rt) view.rt.close();
  view.rt = null;
  clearInterval(view.poller);
  clearInterval(view.metricsPoller);
  $("dashboard-view").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-view").hidden = false;
  $("login-error").textContent = message;
  setLive(false);
}

async function resume() {
  if (!(await renew())) return signOut(); // a reload: the cookie's session, if it still stands
  try {
    const me = await api("GET", "/api/auth/me");
    if (me.ok && me.data.role === "admin") return start(me.data);
  } catch {
    return undefined;
  }
  return signOut();
}

function start(user) {
  view.user = user;
  $("login-view").hidden = true;
  $("dashboard-view").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = user.email;
  renderTabs();
  refresh();
  loadJobs(true);
  openFromHash();
  loadActivity();
  loadMetrics();
  loadSchedules();
  clearInterval(view.poller);
  view.poller = setInterval(refresh, POLL_MS);
  clearInterval(view.metricsPoller);
  view.metricsPoller = setInterval(() => { loadMetrics(); loadSchedules(); }, METRICS_POLL_MS);
  connect();
}

// --- queues: stats, health, controls ------------------------------------------------------------

async function refresh() {
  const [stats, health] = await Promise.all([api("GET", "/api/queues/stats"), api("GET", "/api/queues/health")]);
  if (stats.ok) view.stats = stats.data.queues;
  if (health.data && health.data.checks) {
    view.health = {};
    for (const check of health.data.checks) (view.health[check.queue] ||= []).push(check);
  }
  renderQueues();
}

function renderQueues() {
  const cards = QUEUES.map((name) => {
    const s = view.stats[name] || {};
    const failing = (view.health[name] || []).filter((c) => !c.ok);
    const badges = [
      s.paused ? el("span", { class: "badge paused" }, "paused") : null,
      view.health[name] ? el("span", { class: `badge ${failing.length ? "bad" : "ok"}` }, failing.length ? "unhealthy" : "healthy") : null,
    ];
    const age = el("input", { type: "number", min: "0", value: "3600", "aria-label": `${name}: older than seconds` });
    const which = el("select", { "aria-label": `${name}: state to clean` },
      el("option", { value: "completed" }, "completed"), el("option", { value: "failed" }, "failed"));
    return el("article", { class: "card", "data-queue": name },
      el("h3", {}, name, ...badges),
      el("div", { class: "numbers" }, NUMBERS.map(([key, label]) => el("div",
        { class: key.endsWith("dead_letter") || key === "failed" ? (stat(s, key) > 0 ? "warn" : null) : null, "data-stat": key },
        el("b", {}, stat(s, key) ?? "–"), el("span", {}, label)))),
      el("p", { class: "limits", "data-stat": "limits" }, limitsText(s)),
      el("ul", { class: "checks" }, failing.map((c) => el("li", {}, `${c.check.replace("_", " ")}: ${c.message}`))),
      el("div", { class: "actions" },
        s.paused
          ? el("button", { onclick: () => control(name, "resume"), "data-action": "resume" }, "Resume")
          : el("button", { onclick: () => control(name, "pause"), "data-action": "pause" }, "Pause"),
        el("button", { onclick: () => retryAll(name), "data-action": "retry-failed", disabled: !(s.dead_letter || s.failed) }, "Retry failed"),
        el("button", { onclick: () => editLimits(name), "data-action": "limits" }, "Limits…"),
      ),
      el("div", { class: "clean" },
        el("span", { class: "label" }, "Clean jobs older than (seconds)"),
        which, age,
        el("button", { class: "danger", "data-action": "clean", onclick: () => clean(name, which.value, age.value) }, "Clean")),
    );
  });
  $("queues").replaceChildren(...cards);
}

async function control(queue, action) {
  const result = await api("POST", `/api/queues/${queue}/${action}`);
  if (!result.ok) return notify(`${action} ${queue}: ${problem(result)}`);
  view.stats[queue] = { ...(view.stats[queue] || {}), paused: result.data.paused };
  renderQueues();
  return refresh();
}

// A queue's number on its card: the stats' own, or its high-priority queue's (`high`: waiting).
function stat(s, key) {
  if (key === "high") return s.priorities?.high?.waiting;
  if (key === "high_dead_letter") return s.priorities?.high?.dead_letter;
  return s[key];
}

function limitsText(s) {
  const rate = s.rate_limit ? `${s.rate_limit.max} starts / ${s.rate_limit.duration_seconds} s` : "no rate limit";
  const high = s.priorities?.high?.concurrency;
  return `at most ${s.concurrency ?? "–"} at once${high ? ` (high priority: ${high} more)` : ""} · ${rate}`;
}

async function editLimits(queue) {
  const s = view.stats[queue] || {};
  const concurrency = prompt(`${queue}: most jobs at once (2-1000)`, String(s.concurrency ?? ""));
  if (concurrency === null) return undefined;
  const current = s.rate_limit ? `${s.rate_limit.max}/${s.rate_limit.duration_seconds}` : "";
  const rate = prompt(`${queue}: rate limit as max/seconds (empty: none)`, current);
  if (rate === null) return undefined;
  const body = { concurrency: Number(concurrency) };
  if (rate.trim() === "") body.rate_limit = null;
  else {
    const [max, seconds] = rate.split("/").map(Number);
    body.rate_limit = { max, duration_seconds: seconds };
  }
  const result = await api("PUT", `/api/queues/${queue}/limits`, body);
  if (!result.ok) return notify(`limits ${queue}: ${problem(result)}`);
  view.stats[queue] = { ...s, concurrency: result.data.concurrency, rate_limit: result.data.rate_limit };
  feed("limits", `${queue}: ${limitsText(result.data)}`);
  renderQueues();
  return refresh();
}

async function retryAll(queue) {
  const result = await api("POST", `/api/queues/${queue}/retry-failed`);
  if (!result.ok) return notify(`retry ${queue}: ${problem(result)}`);
  feed("retry", `${queue}: ${result.data.requeued} job(s) requeued`, "good");
  refresh();
  return loadJobs(true);
}

async function clean(queue, state, seconds) {
  const age = Number(seconds);
  if (!Number.isInteger(age) || age < 0) return notify("The age must be a whole number of seconds, 0 or more.");
  if (!confirm(`Remove ${state} jobs of ${queue} older than ${age} s?`)) return undefined;
  const result = await api("POST", `/api/queues/${queue}/clean`, { state, older_than_seconds: age });
  if (!result.ok) return notify(`clean ${queue}: ${problem(result)}`);
  feed("clean", `${queue}: ${result.data.removed} ${state} job(s) removed`);
  refresh();
  return loadJobs(true);
}

function notify(message, kind = "bad") {
  const banner = $("alert");
  banner.className = `banner ${kind}`;
  banner.textContent = message;
  banner.hidden = false;
  later("banner", () => { banner.hidden = true; }, 8000);
}

// --- metrics over time: inline SVG charts -------------------------------------------------------

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS($("svg-ns").namespaceURI, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

async function loadMetrics() {
  const results = await Promise.all(QUEUES.map((q) => api("GET", `/api/queues/${q}/metrics`)));
  const until = Date.now();
  $("charts").replaceChildren(...QUEUES.map((queue, i) => chartCard(queue, results[i].ok ? results[i].data.points : null, until)));
}

function chartCard(queue, points, until) {
  if (!points) return el("article", { class: "card", "data-chart-queue": queue }, el("h3", {}, queue), el("p", { class: "muted" }, "metrics unavailable"));
  const { width, height, minutes } = CHART;
  const slot = width / minutes;
  const start = Math.floor(until / 60000) - minutes + 1; // the first minute shown, in minutes since 1970
  const shown = points.map((p) => ({ ...p, at: Math.floor(new Date(p.ts).getTime() / 60000) - start })).filter((p) => p.at >= 0 && p.at < minutes);
  const most = Math.max(1, ...shown.map((p) => p.completed + p.failed));
  const bars = shown.flatMap((p) => {
    const x = (p.at * slot).toFixed(1);
    const done = (p.completed / most) * height;
    const bad = (p.failed / most) * height;
    const tip = `${p.ts.slice(11, 16)}: ${p.completed} completed, ${p.failed} failed`;
    return [
      svg("rect", { class: "completed", x, y: (height - done).toFixed(1), width: (slot * 0.8).toFixed(1), height: done.toFixed(1), "data-minute": p.ts }, svg("title", {}, tip)),
      p.failed ? svg("rect", { class: "failed", x, y: (height - done - bad).toFixed(1), width: (slot * 0.8).toFixed(1), height: bad.toFixed(1) }, svg("title", {}, tip)) : null,
    ].filter(Boolean);
  });
  const timed = shown.filter((p) => p.duration_p95_ms !== null);
  const slowest = Math.max(1, ...timed.map((p) => p.duration_p95_ms));
  const xy = timed.map((p) => [(p.at * slot + slot * 0.4).toFixed(1), (height - 3 - (p.duration_p95_ms / slowest) * (height - 6)).toFixed(1)]);
  const line = xy.map(([x, y]) => `${x},${y}`).join(" ");
  const dots = xy.map(([cx, cy], i) => svg("circle", { class: "p95dot", cx, cy, r: "2" }, svg("title", {}, `${timed[i].ts.slice(11, 16)}: p95 ${timed[i].duration_p95_ms} ms`)));
  const done = shown.reduce((n, p) => n + p.completed, 0);
  const failed = shown.reduce((n, p) => n + p.failed, 0);
  const box = `0 0 ${width} ${height}`;
  return el("article", { class: "card", "data-chart-queue": queue },
    el("h3", {}, queue, el("span", { class: "badge" }, "last hour")),
    svg("svg", { class: "chart", viewBox: box, preserveAspectRatio: "none", "data-chart": "throughput", role: "img", "aria-label": `${queue}: jobs per minute` }, ...bars),
    el("div", { class: "legend" }, `jobs per minute: ${done} completed, ${failed} failed in the hour`),
    svg("svg", { class: "chart", viewBox: box, preserveAspectRatio: "none", "data-chart": "p95", role: "img", "aria-label": `${queue}: p95 duration` },
      ...(timed.length ? [svg("polyline", { class: "p95", points: line }), ...dots] : [])),
    el("div", { class: "legend" }, timed.length ? `p95 duration, up to ${Math.round(slowest)} ms` : "p95 duration: no jobs"));
}

// --- schedules ----------------------------------------------------------------------------------

async function loadSchedules() {
  const result = await api("GET", "/api/schedules");
  if (!result.ok) return notify(`schedules: ${problem(result)}`);
  const when = (ts) => (ts ? el("span", { title: ts }, ts.replace("T", " ").slice(0, 16)) : "–");
  $("schedules").replaceChildren(...result.data.items.map((s) => el("tr", { "data-schedule": s.name, title: `${s.description} · ${s.expression} in ${s.timezone || "UTC"}` },
    el("td", {}, s.name, s.timezone && s.timezone !== "UTC" ? el("small", {}, ` (${s.timezone})`) : null),
    el("td", { "data-cell": "next" }, s.enabled === false ? el("span", { title: "disabled" }, "paused") : when(s.next_run)),
    el("td", { "data-cell": "last" }, when(s.last_run), " ", s.last_status ? stateChip(s.last_status) : null),
    el("td", {}, el("button", { "data-action": "run", onclick: () => runNow(s.name) }, "Run now")))));
  return undefined;
}

async function runNow(name) {
  const result = await api("POST", `/api/schedules/${name}/run`);
  if (!result.ok) return notify(`run ${name}: ${problem(result)}`);
  feed("run", `${name}: job ${String(result.data.job_id).slice(0, 8)} queued`, "good");
  return later("schedules", loadSchedules, 2000);
}

/** List an alert once (by its seq), newest on top; false when it was already listed. */
function alerted(alert) {
  const list = $("alerts");
  if (list.querySelector(`li[data-seq="${alert.seq}"]`)) return false;
  const item = el("li", { "data-seq": String(alert.seq), "data-ts": alert.ts }, el("time", {}, clock(alert.ts)),
    el("div", {}, el("span", { class: `kind ${alert.level === "info" ? "good" : "bad"}` }, alert.level), " ", alert.message,
      alert.details && alert.details.job_id ? [" ", jobLink(alert.details.job_id)] : null));
  const below = [...list.children].find((li) => Number(li.dataset.seq) < alert.seq);
  list.insertBefore(item, below || null);
  $("alerts-empty").hidden = true;
  while (list.children.length > FEED_MAX) list.lastChild.remove();
  return true;
}

/**
 * The admin room's alerts from before this connection's position: the last 24 h on the first
 * connection; on a reconnect only since the previous load (the room's resume brings the rest).
 */
async function loadAlerts(rt, systemAlert) {
  const started = Date.now();
  const since = Math.max(started - 86_400_000, view.alertsSince || 0);
  const events = await rt.history("admin", { types: ["system.alert"], limit: FEED_MAX, since });
  view.alertsSince = started - 60_000; // a minute's margin for the clocks
  for (const event of events) alerted(systemAlert(event));
}

// --- jobs ---------------------------------------------------------------------------------------

function renderTabs() {
  const tab = (label, active, onclick, attrs = {}) => el("button", { class: active ? "active" : null, onclick, ...attrs }, label);
  $("queue-tabs").replaceChildren(...QUEUES.map((q) => tab(q, q === view.queue, () => pick(q, view.state), { "data-queue-tab": q })));
  $("state-tabs").replaceChildren(...STATES.map((s) => tab(s, s === view.state, () => pick(view.queue, s), { "data-state-tab": s })));
  $("jobs-title").textContent = view.search ? "· search" : `· ${view.queue} · ${view.state}`;
  $("bulk-target").textContent = `${view.queue} · ${view.state}`;
}

function pick(queue, state) {
  view.queue = queue;
  view.state = state;
  view.search = null;
  $("search-clear").hidden = true;
  renderTabs();
  loadJobs(true);
}

async function loadJobs(reset) {
  if (reset) {
    view.cursor = null;
    $("jobs").replaceChildren();
  }
  const params = new URLSearchParams(view.search ? { ...view.search, limit: "25" } : { state: view.state, limit: "25" });
  if (view.cursor) params.set("cursor", view.cursor);
  const path = view.search ? `/api/jobs?${params}` : `/api/queues/${view.queue}/jobs?${params}`;
  const result = await api("GET", path);
  if (!result.ok) return notify(`jobs: ${problem(result)}`);
  for (const job of result.data.items) $("jobs").append(jobRow(job));
  view.cursor = result.data.next_cursor;
  $("more").hidden = !view.cursor;
  $("jobs-empty").hidden = $("jobs").children.length > 0;
  return undefined;
}

function stateChip(state) {
  return el("span", { class: `state ${state}` }, state);
}

// The buttons a job's state allows: retry (failed), promote (delayed), cancel (waiting, delayed).
function jobButtons(job, quiet = false) {
  const button = (action, label, fn) => el("button", { "data-action": action,
    onclick: (e) => { if (quiet) e.stopPropagation(); fn(job.id); } }, label);
  return [
    job.state === "failed" ? button("retry", "Retry", retry) : null,
    job.state === "delayed" ? button("promote", "Run now", promote) : null,
    job.state === "waiting" || job.state === "delayed" ? button("cancel", "Cancel", cancel) : null,
  ].filter(Boolean).flatMap((b) => [b, " "]);
}

function priorityChip(job) {
  return job.priority === "high" ? el("span", { class: "badge high", "data-cell": "priority" }, "high") : null;
}

function jobRow(job) {
  const actions = el("td", {},
    ...jobButtons(job, true),
    el("button", { class: "danger", "data-action": "remove", title: "remove the job", onclick: (e) => { e.stopPropagation(); remove(job.id); } }, "Remove"));
  return el("tr", { "data-id": job.id, class: view.selected === job.id ? "selected" : null, onclick: () => showJob(job.id) },
    el("td", { class: "mono", title: job.id }, job.id.slice(0, 8)),
    el("td", {}, job.type, " ", priorityChip(job)),
    el("td", { "data-cell": "state", title: job.run_at ? `runs at ${job.run_at}` : null }, stateChip(job.state)),
    el("td", { class: "num", "data-cell": "attempts" }, `${job.attempts}/${job.max_attempts}`),
    el("td", { title: job.updated_at, "data-cell": "updated" }, ago(job.updated_at)),
    actions);
}

function updateRow(job) {
  const row = document.querySelector(`tr[data-id="${CSS.escape(job.id)}"]`);
  if (row) row.replaceWith(jobRow(job));
}

function jobLink(id, label = `job ${String(id).slice(0, 8)}`) {
  return el("a", { href: `#job=${id}`, class: "job-link", "data-job-link": id }, label);
}

function openFromHash() {
  const match = /^#job=([0-9a-f]{32})$/.exec(location.hash);
  if (match && view.token) showJob(match[1], true);
}

// A job's page: its fields, timeline (created, each attempt's start, end and error), log lines,
// payload, result, error and actions.
async function showJob(id, scroll = false) {
  view.selected = id;
  for (const row of $("jobs").children) row.classList.toggle("selected", row.dataset.id === id);
  const [result, logs] = await Promise.all([api("GET", `/api/jobs/${id}`), api("GET", `/api/jobs/${id}/logs`)]);
  const box = $("detail");
  if (!result.ok) {
    box.hidden = false;
    box.replaceChildren(el("p", { class: "muted" }, `Job ${id}: ${problem(result)}`));
    return;
  }
  const job = result.data;
  if (location.hash !== `#job=${id}`) history.replaceState(null, "", `#job=${id}`);
  const field = (label, value) => [el("dt", {}, label), el("dd", {}, value ?? "–")];
  const json = (label, value, name) => (value === null || value === undefined || (typeof value === "object" && !Object.keys(value).length)
    ? null : [el("div", { class: "muted" }, label), el("pre", { "data-part": name }, JSON.stringify(value, null, 2))]);
  const lines = logs.ok ? logs.data.items : [];
  const attempts = logs.ok ? logs.data.attempts || [] : [];
  box.hidden = false;
  box.replaceChildren(...[
    el("h3", {}, "Job ", el("span", { class: "mono" }, job.id), stateChip(job.state), " ", ...jobButtons(job),
      el("button", { "data-action": "duplicate", onclick: () => duplicate(job.id) }, "Duplicate"), " ",
      el("button", { class: "danger", "data-action": "remove", onclick: () => remove(job.id) }, "Remove")),
    el("dl", {},
      field("queue / type", `${job.queue} / ${job.type}`),
      field("priority", job.priority),
      field("runs at", job.run_at),
      field("attempts", `${job.attempts} of ${job.max_attempts}`),
      field("progress", `${job.progress}%`),
      field("created", job.created_at),
      field("updated", job.updated_at),
      field("caused by", job.user_id)),
    el("div", { class: "muted" }, "timeline"), timeline(job, attempts),
    el("div", { class: "muted" }, `log (${lines.length} lines)`), logTable(lines),
    json("payload", job.payload, "payload"), json("result", job.result, "result"), json("error", job.error, "error"),
  ].flat().filter(Boolean));
  updateRow(job);
  if (scroll) box.scrollIntoView({ block: "start" });
}

function timeline(job, attempts) {
  const items = [el("li", {}, `${job.created_at} created`)];
  for (const a of attempts) {
    const error = a.error ? el("span", { class: "bad" }, ` · ${a.error.message || a.error.kind}`) : null;
    items.push(el("li", { "data-attempt": `${a.run}.${a.attempt}` },
      `attempt ${a.attempt}${a.run > 1 ? ` (run ${a.run})` : ""}: ${a.started_at || "?"} → ${a.ended_at || "?"} · ${a.outcome || ""}`, error));
  }
  const latest = attempts[attempts.length - 1];
  if (job.started_at && !(latest && latest.started_at && latest.started_at >= job.started_at)) {
    items.push(el("li", { "data-attempt": "latest" }, `attempt ${job.attempts}: ${job.started_at} → ${job.finished_at || "running"} · ${job.state}`));
  }
  return el("ul", { class: "timeline", id: "timeline" }, items);
}

function logTable(lines) {
  if (!lines.length) return el("p", { class: "muted" }, "No log lines.");
  return el("table", { class: "logs", id: "logs" }, el("tbody", {}, lines.map((line) => el("tr", { class: line.level, "data-log-attempt": String(line.attempt) },
    el("td", { class: "mono" }, clock(line.ts)), el("td", {}, `#${line.attempt}`), el("td", {}, line.level), el("td", {}, line.message)))));
}

async function duplicate(id) {
  const result = await api("POST", `/api/jobs/${id}/duplicate`);
  if (!result.ok) return notify(`duplicate: ${problem(result)}`);
  feed("duplicate", [jobLink(result.data.id), ` of ${id.slice(0, 8)} queued`], "good");
  later("stats", refresh, 300);
  return showJob(result.data.id);
}

// --- search and bulk actions --------------------------------------------------------------------

function searchFilters() {
  const filters = { q: $("search-q").value.trim(), queue: $("search-queue").value, state: $("search-state").value,
    type: $("search-type").value.trim(), user_id: $("search-user").value.trim(), article_id: $("search-article").value.trim() };
  return Object.fromEntries(Object.entries(filters).filter(([, v]) => v));
}

function search(event) {
  event.preventDefault();
  view.search = searchFilters();
  $("search-clear").hidden = false;
  renderTabs();
  return loadJobs(true);
}

function clearSearch() {
  for (const id of ["search-q", "search-type", "search-user", "search-article"]) $(id).value = "";
  $("search-queue").value = "";
  $("search-state").value = "";
  pick(view.queue, view.state);
}

async function bulkApply() {
  const action = $("bulk-action").value;
  const { queue, state } = view;
  if (!confirm(`${action} every ${state} job of ${queue}?`)) return undefined;
  const { JobsApi } = await import("/static/realtime.js");
  const jobs = new JobsApi({ token: () => view.token, refresh: renew });
  try {
    const total = await jobs.bulk(queue, { action, state });
    feed("bulk", `${queue}: ${action} ${total.done} of ${total.matched} ${state} job(s)`, total.done ? "good" : "");
  } catch (err) {
    notify(`${action} ${queue}: ${err.message}`);
  }
  refresh();
  return loadJobs(true);
}

async function retry(id) {
  const result = await api("POST", `/api/jobs/${id}/retry`);
  if (!result.ok) return notify(`retry: ${problem(result)}`);
  updateRow(result.data);
  if (view.selected === id) showJob(id);
  return later("stats", refresh, 300);
}

async function promote(id) {
  const result = await api("POST", `/api/jobs/${id}/promote`);
  if (!result.ok) return notify(`run now: ${problem(result)}`);
  updateRow(result.data);
  if (view.selected === id) showJob(id);
  return later("stats", refresh, 300);
}

async function cancel(id) {
  if (!confirm(`Cancel job ${id.slice(0, 8)}?`)) return undefined;
  const result = await api("POST", `/api/jobs/${id}/cancel`);
  if (!result.ok) return notify(`cancel: ${problem(result)}`);
  updateRow(result.data);
  if (view.selected === id) showJob(id);
  return later("stats", refresh, 300);
}

async function remove(id) {
  if (!confirm(`Remove job ${id.slice(0, 8)}?`)) return undefined;
  const result = await api("DELETE", `/api/jobs/${id}`);
  if (!result.ok && result.status !== 404) return notify(`remove: ${problem(result)}`);
  document.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.remove();
  if (view.selected === id) {
    $("detail").hidden = true;
    if (location.hash === `#job=${id}`) history.replaceState(null, "", location.pathname + location.search);
  }
  return later("stats", refresh, 300);
}

// --- live updates and the activity feed ---------------------------------------------------------

function setLive(on, text) {
  $("live").classList.toggle("on", on);
  $("live-text").textContent = text || (on ? "live" : "offline");
}

async function connect() {
  let RealtimeClient, systemAlert;
  try {
    ({ RealtimeClient, systemAlert } = await import("/static/realtime.js"));
  } catch (err) {
    setLive(false, "offline: no real-time client");
    return;
  }
  if (!view.token) return;
  const override = new URLSearchParams(location.search).get("ws");
  // The client reads the page's current token and asks the page to refresh it after a 401.
  const rt = new RealtimeClient({
    token: () => view.token, refresh: async () => ((await renew()) ? view.token : null), apiUrl: "", wsUrl: override || null,
  });
  rt.onConnectionChange((on) => {
    setLive(on);
    if (on) loadAlerts(rt, systemAlert);
  });
  rt.onError((err) => { if (err.fatal) setLive(false, "offline: " + err.message); });
  rt.onDashboardEvent(live);
  rt.onSystemAlert((alert) => {
    alerted(alert);
    feed("alert", alert.message, alert.level === "info" ? "good" : "bad", alert.ts);
    if (alert.level !== "info") notify(alert.message);
    later("stats", refresh, 300);
  });
  view.rt = rt.start();
}

function live(event) {
  const data = event.data || {};
  if (["job.completed", "job.failed", "job.cancelled", "job.progress"].includes(event.type)) {
    const kind = event.type.slice(4);
    const row = document.querySelector(`tr[data-id="${CSS.escape(data.job_id)}"]`);
    if (row && kind !== "progress") {
      row.querySelector('[data-cell="state"]').replaceChildren(stateChip(kind));
      row.querySelector('[data-cell="attempts"]').textContent = `${data.attempts}/${row.querySelector('[data-cell="attempts"]').textContent.split("/")[1]}`;
      row.querySelector('[data-cell="updated"]').textContent = "just now";
      const retryButton = row.querySelector('[data-action="retry"]');
      if (retryButton && kind === "completed") retryButton.remove();
      for (const b of row.querySelectorAll('[data-action="promote"], [data-action="cancel"]')) b.remove(); // ended
    }
    if (view.selected === data.job_id) later("detail", () => showJob(data.job_id), 200);
    if (kind !== "progress") {
      // a cancel is in the feed as its audit event (`job.cancel`, with who did it)
      if (kind !== "cancelled") feed(kind, [`${data.queue} `, jobLink(data.job_id), data.error ? `: ${data.error.message || data.error.type || ""}` : ""],
        kind === "failed" ? "bad" : "good", event.ts);
      later("stats", refresh, 500);
      later("stats-settled", refresh, 2500); // SQS counts the finished message until it is deleted
    }
  } else if (event.type === "activity") {
    feedAudit(data);
  } else if (event.type === "article.status") {
    feed("article", `${String(data.article_id).slice(0, 8)} is ${data.status}`, "", event.ts);
  }
}

function feed(kind, text, cls = "", ts = null, append = false) {
  const item = el("li", {}, el("time", {}, clock(ts)), el("div", {}, el("span", { class: `kind ${cls}` }, kind), " ", text));
  const list = $("feed");
  if (append) list.append(item);
  else list.prepend(item);
  while (list.children.length > FEED_MAX) list.lastChild.remove();
}

// Job outcomes are shown from their own events; the audit trail's copies would repeat them.
const REPEATED = new Set(["job.completed", "job.failed"]);

function feedAudit(event, append = false) {
  if (REPEATED.has(event.action)) return;
  const r = event.resource;
  const resource = r && r.id ? (r.type === "job" && /^[0-9a-f]{32}$/.test(r.id) ? [" ", jobLink(r.id)] : ` ${r.type} ${String(r.id).slice(0, 24)}`) : "";
  const actor = event.actor || {};
  const who = actor.email ? ` by ${actor.email}` : actor.user_id ? ` by ${String(actor.user_id).slice(0, 8)}` : "";
  const bad = event.severity === "warning" || event.severity === "critical" || /failed/.test(event.action);
  feed(event.action, [resource, who], bad ? "bad" : "", event.ts, append);
}

async function loadActivity() {
  try {
    const result = await api("GET", "/api/audit?limit=20");
    if (result.ok && result.data && Array.isArray(result.data.items)) for (const e of result.data.items) feedAudit(e, true);
  } catch {
    // the feed starts empty; live events fill it
  }
}

// --- wiring -------------------------------------------------------------------------------------

$("login-form").addEventListener("submit", signIn);
$("logout").addEventListener("click", () => signOut());
$("more").addEventListener("click", () => loadJobs(false));
$("search-form").addEventListener("submit", search);
$("search-clear").addEventListener("click", clearSearch);
$("bulk-apply").addEventListener("click", bulkApply);
$("search-queue").append(...QUEUES.map((q) => el("option", { value: q }, q)));
$("search-state").append(...STATES.map((state) => el("option", { value: state }, state)));
window.addEventListener("hashchange", openFromHash);
resume();
