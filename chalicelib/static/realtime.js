// Inkwell real-time client for browsers: a dependency-free ES module, served at /static/realtime.js.
//
// It gets a single-use ticket over REST (so the long-lived JWT stays out of URLs and logs),
// connects, and keeps the connection: reconnects with exponential backoff and jitter (1 s up to
// 30 s), re-subscribes its rooms and resumes every room after the last seq it delivered, so no
// event is missed or repeated across a reconnect. It pings before API Gateway's 10-minute idle
// timeout and reconnects on its own before the 2-hour cap. Same behaviour as clients/python.
//
//   import { RealtimeClient } from "/static/realtime.js";
//   const rt = new RealtimeClient({ apiUrl: "", token, wsUrl: "ws://127.0.0.1:8001/" });
//   rt.onDashboardEvent((event) => render(event));      // admin room: jobs, articles, activity
//   rt.onArticleStatus(articleId, (s) => show(s.status));
//   rt.onSystemAlert((alert) => warn(alert.level, alert.message));
//   rt.start();
//   const earlier = await rt.history("admin", { types: ["system.alert"], limit: 20 }); // oldest first
//
// A room has at most one `resume` in flight on a connection (the server's `resumed` names only
// the room), so each reply is known to be the cursor's (a reconnect, a gap, the next page) or a
// `history` page's; the cursor's come first.
//
// A refresh token works once, and a browser's tabs of one origin share the session cookie: with
// Web Locks they refresh one at a time (refreshSession), each presenting the cookie the last set.

export const IDLE_TIMEOUT_MS = 600_000;
export const MAX_AGE_MS = 7_200_000;
export const DASHBOARD_TYPES = new Set([
  "article.status", "job.progress", "job.completed", "job.failed", "job.cancelled", "activity", "analytics.update",
]);
const REPLIES = new Set(["pong", "subscribed", "unsubscribed", "resumed", "rooms", "error"]);
export const REPLAY_PAGE = 500; // events per `resumed` from the server (handlers.MAX_REPLAY)
export const DAY_MS = 86_400_000;

/** A `system.alert` envelope as the alert handlers get it. */
export function systemAlert(event) {
  const { level, message, ...details } = event.data;
  return { level, message, details, ts: event.ts, seq: event.seq };
}

/** Seconds before reconnect attempt `attempt` (0-based): exponential, capped, "equal jitter". */
export function backoffDelay(attempt, rand, first = 1, cap = 30) {
  const ceiling = Math.min(cap, first * 2 ** Math.min(attempt, 32));
  return Math.max(first, ceiling / 2 + (rand * ceiling) / 2);
}

/**
 * What has been delivered of one room: every seq up to `last`, once and in order. Events that
 * arrive early (live ones overtaking a replay) wait in `ahead` until the hole below them fills.
 */
export class RoomCursor {
  constructor(last = 0) {
    this.last = last;
    this.ahead = new Map();
  }

  /** The events now ready, in order: `event` and any it unblocks; [] for a duplicate or an early one. */
  accept(seq, event) {
    if (seq <= this.last || this.ahead.has(seq)) return [];
    if (seq !== this.last + 1) {
      this.ahead.set(seq, event);
      return [];
    }
    const ready = [event];
    this.last = seq;
    while (this.ahead.has(this.last + 1)) {
      this.last += 1;
      ready.push(this.ahead.get(this.last));
      this.ahead.delete(this.last);
    }
    return ready;
  }

  get hasGap() {
    return this.ahead.size > 0;
  }

  /** After a complete resume, a hole the replay did not fill is gone for good: release the rest. */
  settle() {
    const seqs = [...this.ahead.keys()].sort((a, b) => a - b);
    const ready = seqs.map((seq) => this.ahead.get(seq));
    if (seqs.length) this.last = seqs[seqs.length - 1];
    this.ahead.clear();
    return ready;
  }
}

export class AuthError extends Error {}

export const REFRESH_LOCK = "inkwell-refresh";

// A cookie refresh its page left (a reload, a closed tab) goes on without the page (keepalive),
// and its answer's cookie is kept; but the page's lock ends with it. The next holder waits for that
// refresh (up to REFRESH_PENDING_MS) rather than present the cookie it is replacing, which the server
// would take for reuse and end the session.
export const REFRESH_PENDING = "inkwell-refresh-pending"; // localStorage: when the refresh in flight began
export const REFRESH_PENDING_MS = 3000;

/** POST /api/auth/refresh with `refreshToken`, else the session cookie: the answer, or null. */
async function postRefresh(apiUrl, refreshToken) {
  const headers = { "Content-Type": "application/json" };
  if (!refreshToken) headers["X-Inkwell-Session"] = "cookie";
  try {
    const response = await fetch(`${apiUrl}/api/auth/refresh`, {
      method: "POST",
      headers,
      credentials: "same-origin",
      keepalive: !refreshToken,
      body: refreshToken ? JSON.stringify({ refresh_token: refreshToken }) : "{}",
    });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/**
 * A refresh through the session cookie: the answer (a new access token), or null when the
 * session has ended. The origin's tabs share the cookie and each holds its access token in its
 * own memory, so each must refresh, and two presenting the same cookie at once would be refused as
 * reuse (ending the session). With Web Locks they take turns: a tab waiting for another still
 * refreshes, with the cookie the other's answer set. Without them (older browsers, a page not
 * served over https or from localhost) the refresh runs at once, as it did before.
 */
export function refreshSession(apiUrl = "", locks = globalThis.navigator?.locks, storage = pageStorage()) {
  const refresh = () => postRefresh(apiUrl, null);
  return locks ? locks.request(REFRESH_LOCK, () => afterPending(refresh, storage)) : refresh();
}

/** Within the lock: `refresh` once a refresh a gone page left in flight is answered, itself marked pending. */
async function afterPending(refresh, storage) {
  if (!storage) return refresh();
  const wait = Number(storage.getItem(REFRESH_PENDING)) + REFRESH_PENDING_MS - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait, REFRESH_PENDING_MS)));
  storage.setItem(REFRESH_PENDING, String(Date.now()));
  try {
    return await refresh();
  } finally {
    storage.removeItem(REFRESH_PENDING);
  }
}

function pageStorage() {
  try {
    return globalThis.localStorage || null;
  } catch {
    return null; // storage disabled: refreshes wait for no gone page
  }
}

export class RealtimeClient {
  /**
   * @param {object} options
   * @param {string|function} options.token  the access token from POST /api/auth/login (or a
   *                                     function answering the current one)
   * @param {string} [options.refreshToken]  the login's refresh token: the client then refreshes
   *                                     the access token itself, before `expiresAt` and after a 401
   * @param {string} [options.expiresAt] the access token's `expires_at`
   * @param {boolean} [options.cookieSession]  refresh through the session cookie (a page that
   *                                     logged in with `X-Inkwell-Session: cookie`) instead
   * @param {function} [options.refresh] async () => a new access token or null: how to refresh
   *                                     instead (a page that refreshes on its own)
   * @param {function} [options.onTokens]  called with each refresh answer (to keep the new tokens)
   * @param {string} [options.apiUrl]    the REST API's origin ("" for the page's own)
   * @param {string} [options.wsUrl]     ws(s):// URL; default: the `url` the ticket answer gives
   * @param {number} [options.pingIntervalMs]
   * @param {number} [options.maxAgeMs]  reconnect before API Gateway's 2-hour cap
   */
  constructor({
    token, apiUrl = "", wsUrl = null, pingIntervalMs = IDLE_TIMEOUT_MS * 0.4, maxAgeMs = MAX_AGE_MS - 300_000,
    backoffFirst = 1, backoffCap = 30, gapWaitMs = 2000, random = Math.random, resumeTimeoutMs = 15_000,
    refreshToken = null, expiresAt = null, cookieSession = false, refresh = null, onTokens = null,
    renewBeforeMs = 60_000,
  }) {
    Object.assign(this, { token, apiUrl: apiUrl.replace(/\/$/, ""), wsUrl, pingIntervalMs, maxAgeMs });
    Object.assign(this, { refreshToken, cookieSession, refreshFn: refresh, onTokens, renewBeforeMs });
    this.pendingExpiry = expiresAt;
    this.renewing = null; // the refresh in flight: concurrent callers share it (a refresh token works once)
    this.renewTimer = null;
    this.backoff = [backoffFirst, backoffCap];
    this.gapWaitMs = gapWaitMs;
    this.resumeTimeoutMs = resumeTimeoutMs;
    this.random = random;
    this.rooms = new Set(); // subscribed rooms, beyond the automatic user:<id> and admin
    this.cursors = new Map();
    this.listeners = new Set();
    this.errorListeners = new Set();
    this.stateListeners = new Set();
    this.ws = null;
    this.connected = false;
    this.closing = false;
    this.attempt = 0;
    this.timers = new Set();
    this.gapChecks = new Set();
    this.resuming = new Map(); // room -> the resume in flight: {kind: "cursor" | "history", timer}
    this.wanted = new Map(); // room -> `after` of the cursor's resume waiting for its turn
    this.histories = new Map(); // room -> history requests, the first one being served
  }

  // --- lifecycle -------------------------------------------------------------------------------

  start() {
    this.closing = false;
    if (this.pendingExpiry) this.scheduleRenewal(this.pendingExpiry);
    this.connect();
    return this;
  }

  close() {
    this.closing = true;
    clearTimeout(this.renewTimer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.gapChecks.clear();
    for (const room of [...this.histories.keys()]) while (this.histories.has(room)) this.finishHistory(room);
    if (this.ws) this.ws.close(1000, "client closed");
  }

  // --- rooms and events ------------------------------------------------------------------------

  subscribe(room) {
    this.rooms.add(room);
    this.send({ action: "subscribe", room });
  }

  unsubscribe(room) {
    this.rooms.delete(room);
    this.cursors.delete(room);
    this.wanted.delete(room);
    while (this.histories.has(room)) this.finishHistory(room);
    this.send({ action: "unsubscribe", room });
  }

  /**
   * The room's kept events from before this connection's position (what live delivery starts
   * after), oldest first: the newest `limit` of `types` (a Set, an array or null: all) at or after
   * `since` (ms or a Date; default 24 h ago). Asked for with `resume` from earlier seqs, one page
   * of REPLAY_PAGE events at a time, newest page first, at most `maxPages` pages; the room's
   * cursor is not touched, so live delivery and its order stay as they are. Waits for the room's
   * position (the first connection's `rooms` or `subscribed` reply); survives reconnects; resolves
   * with what it has on close(), unsubscribe(), an error or a reply that does not come.
   */
  history(room, { types = null, limit = 50, since = Date.now() - DAY_MS, maxPages = 20 } = {}) {
    return new Promise((resolve) => {
      const request = {
        types: types === null ? null : new Set(types), limit, since: +since, maxPages, resolve,
        found: new Map(), upto: null, start: 0, end: 0, pages: 0, inPage: 0, oldest: Infinity,
      };
      if (!this.histories.has(room)) this.histories.set(room, []);
      this.histories.get(room).push(request);
      this.pump(room);
    });
  }

  /** Call `handler(event)` for events matching `types` (a Set or null) and `room` (or null). */
  on(handler, { types = null, room = null } = {}) {
    const entry = { handler, types, room };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  onError(handler) {
    this.errorListeners.add(handler);
    return () => this.errorListeners.delete(handler);
  }

  /** `handler(true|false)` whenever the connection opens or drops. */
  onConnectionChange(handler) {
    this.stateListeners.add(handler);
    return () => this.stateListeners.delete(handler);
  }

  /** The dashboard's live feed: job, article, activity and analytics events of the admin room. */
  onDashboardEvent(handler) {
    return this.on(handler, { types: DASHBOARD_TYPES, room: "admin" });
  }

  /** One article's status changes: `handler({articleId, status, jobId, seq, ts})`. */
  onArticleStatus(articleId, handler) {
    const room = `article:${articleId}`;
    const off = this.on(
      (e) => handler({ articleId: e.data.article_id, status: e.data.status, jobId: e.data.job_id, seq: e.seq, ts: e.ts }),
      { types: new Set(["article.status"]), room },
    );
    this.subscribe(room);
    return () => {
      off();
      this.unsubscribe(room);
    };
  }

  /** `handler({level, message, details, ts, seq})` for system alerts (admins). */
  onSystemAlert(handler) {
    return this.on((e) => handler(systemAlert(e)), { types: new Set(["system.alert"]), room: "admin" });
  }

  // --- the connection --------------------------------------------------------------------------

  async connect() {
    if (this.closing) return;
    let ticket;
    try {
      ticket = await this.fetchTicket();
    } catch (err) {
      if (err instanceof AuthError) {
        this.emitError({ type: "error", message: err.message, fatal: true });
        return;
      }
      this.retry();
      return;
    }
    const base = this.wsUrl || ticket.url;
    if (!base) {
      this.emitError({ type: "error", message: "no WebSocket URL: pass wsUrl", fatal: true });
      return;
    }
    const ws = new WebSocket(`${base}${base.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(ticket.ticket)}`);
    this.ws = ws;
    let planned = false;
    let pinger = null;
    let aging = null;
    ws.onopen = () => {
      this.attempt = 0;
      this.greet();
      this.setConnected(true);
      pinger = setInterval(() => this.send({ action: "ping" }), this.pingIntervalMs);
      aging = setTimeout(() => {
        planned = true;
        ws.close(1000, "planned reconnect");
      }, this.maxAgeMs);
    };
    ws.onmessage = (message) => this.handle(message.data);
    ws.onclose = () => {
      clearInterval(pinger);
      clearTimeout(aging);
      if (this.ws === ws) this.ws = null;
      for (const { timer } of this.resuming.values()) clearTimeout(timer);
      this.resuming.clear(); // no reply comes on a closed connection; the next one asks again
      this.setConnected(false);
      if (this.closing) return;
      if (planned) this.connect();
      else this.retry();
    };
  }

  retry() {
    if (this.closing) return;
    const delay = backoffDelay(this.attempt, this.random(), ...this.backoff);
    this.attempt += 1;
    this.later(() => this.connect(), delay * 1000);
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  greet() {
    const frames = [{ action: "rooms" }];
    for (const room of [...this.rooms].sort()) frames.push({ action: "subscribe", room });
    for (const frame of frames) this.ws.send(JSON.stringify(frame));
    for (const [room, cursor] of this.cursors) this.wanted.set(room, cursor.last);
    for (const room of new Set([...this.cursors.keys(), ...this.histories.keys()])) this.pump(room);
  }

  /** Resume the room's cursor after `after` once no other resume of the room is in flight. */
  resume(room, after) {
    this.wanted.set(room, after);
    this.pump(room);
  }

  /** Send the room's next resume, the cursor's before a history page's, if none is in flight. */
  pump(room) {
    if (this.resuming.has(room) || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    let frame;
    let kind = "cursor";
    if (this.wanted.has(room)) {
      frame = { action: "resume", room, after: this.wanted.get(room) };
      this.wanted.delete(room);
    } else {
      const request = (this.histories.get(room) || [])[0];
      const cursor = this.cursors.get(room);
      if (!request || !cursor) return; // a history waits for the room's position
      if (request.upto === null) request.upto = request.end = cursor.last;
      if (request.upto === 0) {
        this.finishHistory(room); // nothing before it
        return this.pump(room);
      }
      request.start = Math.max(0, request.end - REPLAY_PAGE);
      request.inPage = 0;
      request.oldest = Infinity;
      frame = { action: "resume", room, after: request.start };
      kind = "history";
    }
    this.ws.send(JSON.stringify(frame));
    const timer = this.later(() => this.unanswered(room, kind), this.resumeTimeoutMs);
    this.resuming.set(room, { kind, timer });
  }

  /** The room's resume was answered (`resumed`, or an error frame naming it): whose it was. */
  answered(room) {
    const asked = this.resuming.get(room);
    if (!asked) return "cursor";
    clearTimeout(asked.timer);
    this.timers.delete(asked.timer);
    this.resuming.delete(room);
    return asked.kind;
  }

  unanswered(room, kind) {
    if (!this.resuming.has(room)) return;
    this.resuming.delete(room);
    if (kind === "history") this.finishHistory(room);
    else if (this.cursors.has(room) && !this.wanted.has(room)) this.wanted.set(room, this.cursors.get(room).last);
    this.pump(room);
  }

  /** A history page arrived: ask for the page before it, or resolve. */
  historyPage(room) {
    const request = (this.histories.get(room) || [])[0];
    if (!request) return;
    request.pages += 1;
    const done = request.start === 0 || request.found.size >= request.limit || request.pages >= request.maxPages
      || request.inPage === 0 /* that page has expired, and all before it */ || request.oldest < request.since;
    if (done) this.finishHistory(room);
    else request.end = request.start;
  }

  finishHistory(room) {
    const queue = this.histories.get(room) || [];
    const request = queue.shift();
    if (!queue.length) this.histories.delete(room);
    if (!request) return;
    const events = [...request.found.values()]
      .filter((e) => !(Date.parse(e.ts) < request.since))
      .sort((a, b) => a.seq - b.seq);
    request.resolve(events.slice(Math.max(0, events.length - request.limit)));
  }

  /** A replayed event within the history page in flight (its seqs are below live delivery). */
  collect(event) {
    const request = (this.histories.get(event.room) || [])[0];
    const asked = this.resuming.get(event.room);
    if (!request || !asked || asked.kind !== "history") return;
    if (event.seq <= request.start || event.seq > request.end) return;
    request.inPage += 1;
    request.oldest = Math.min(request.oldest, Date.parse(event.ts) || Infinity);
    if (request.types === null || request.types.has(event.type)) request.found.set(event.seq, event);
  }

  send(frame) {
    // Not connected: the next connection's greeting sends subscriptions and resumes.
    if (this.ws && this.connected && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  setConnected(value) {
    if (this.connected === value) return;
    this.connected = value;
    for (const handler of this.stateListeners) handler(value);
  }

  // --- incoming frames -------------------------------------------------------------------------

  handle(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (!REPLIES.has(msg.type) && Number.isInteger(msg.seq) && typeof msg.room === "string") {
      this.deliver(msg);
    } else if (msg.type === "rooms") {
      for (const [room, seq] of Object.entries(msg.rooms || {})) {
        if (!this.cursors.has(room)) this.cursors.set(room, new RoomCursor(seq));
        this.pump(room);
      }
    } else if (msg.type === "subscribed") {
      if (!this.cursors.has(msg.room)) this.cursors.set(msg.room, new RoomCursor(msg.seq || 0));
      this.pump(msg.room);
    } else if (msg.type === "resumed") {
      if (this.answered(msg.room) === "history") this.historyPage(msg.room);
      else {
        const cursor = this.cursors.get(msg.room);
        if (!cursor) return;
        if (msg.complete !== false) this.dispatch(cursor.settle());
        else this.resume(msg.room, msg.next_after);
      }
      this.pump(msg.room);
    } else if (msg.type === "error") {
      if (msg.action === "resume" && typeof msg.room === "string" && this.answered(msg.room) === "history") {
        this.finishHistory(msg.room);
      }
      if (typeof msg.room === "string") this.pump(msg.room);
      this.emitError(msg);
    }
  }

  deliver(event) {
    this.collect(event);
    let cursor = this.cursors.get(event.room);
    if (!cursor) {
      cursor = new RoomCursor(event.seq - 1);
      this.cursors.set(event.room, cursor);
    }
    this.dispatch(cursor.accept(event.seq, event));
    if (cursor.hasGap && !this.gapChecks.has(event.room)) {
      // An event overtook an earlier one; if the earlier one does not follow soon, ask for it.
      this.gapChecks.add(event.room);
      this.later(() => {
        this.gapChecks.delete(event.room);
        if (cursor.hasGap && this.cursors.get(event.room) === cursor) {
          this.resume(event.room, cursor.last);
        }
      }, this.gapWaitMs);
    }
  }

  dispatch(ready) {
    for (const event of ready) {
      for (const { handler, types, room } of [...this.listeners]) {
        if ((types === null || types.has(event.type)) && (room === null || room === event.room)) {
          try {
            handler(event);
          } catch (err) {
            console.error("realtime handler failed", err);
          }
        }
      }
    }
  }

  emitError(msg) {
    for (const handler of this.errorListeners) handler(msg);
  }

  // --- the access token ------------------------------------------------------------------------

  currentToken() {
    return typeof this.token === "function" ? this.token() : this.token;
  }

  canRefresh() {
    return Boolean(this.refreshFn || this.refreshToken || this.cookieSession);
  }

  /** A new access token (single flight), or null when the session has ended. */
  renew() {
    if (!this.renewing) {
      this.renewing = this.refreshOnce().finally(() => { this.renewing = null; });
    }
    return this.renewing;
  }

  async refreshOnce() {
    if (this.refreshFn) {
      const token = await this.refreshFn().catch(() => null);
      if (token) this.token = typeof this.token === "function" ? this.token : token;
      return token || null;
    }
    if (!this.refreshToken && !this.cookieSession) return null;
    const data = this.cookieSession ? await refreshSession(this.apiUrl) : await postRefresh(this.apiUrl, this.refreshToken);
    if (!data) return null;
    this.token = data.token;
    if (data.refresh_token) this.refreshToken = data.refresh_token;
    if (this.onTokens) this.onTokens(data);
    this.scheduleRenewal(data.expires_at);
    return data.token;
  }

  /** Refresh a minute (renewBeforeMs) before the access token expires. */
  scheduleRenewal(expiresAt) {
    clearTimeout(this.renewTimer);
    const at = new Date(expiresAt).getTime();
    if (!Number.isFinite(at) || this.refreshFn || this.closing) return;
    this.renewTimer = setTimeout(() => this.renew(), Math.max(1000, at - Date.now() - this.renewBeforeMs));
  }

  async fetchTicket(retried = false) {
    const response = await fetch(`${this.apiUrl}/api/realtime/ticket`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.currentToken()}`, "Content-Type": "application/json" },
    });
    if (response.status === 401 && !retried && this.canRefresh() && (await this.renew())) {
      return this.fetchTicket(true); // the access token expired or was refused: refresh, then ask again
    }
    if (response.status === 401 || response.status === 403) throw new AuthError(`ticket refused: HTTP ${response.status}`);
    if (!response.ok) throw new Error(`ticket request failed: HTTP ${response.status}`);
    return response.json();
  }
}

/**
 * The operators' job calls over REST (admins; logs also for the user who caused the job):
 *
 *   const jobs = new JobsApi({ token: () => token, refresh: async () => newTokenOrNull });
 *   const page = await jobs.search({ q: "timed out", queue: "articles" });   // {items, next_cursor}
 *   const { items, attempts } = await jobs.logs(jobId);
 *   const copy = await jobs.duplicate(jobId);                              // the new job
 *   const done = await jobs.bulk("articles", { action: "retry" });       // every call, cursor followed
 *
 * A failed call throws an Error carrying `status` and the answer's `Message`.
 */
export class JobsApi {
  constructor({ token, refresh = null, apiUrl = "" } = {}) {
    this.token = typeof token === "function" ? token : () => token;
    this.refresh = refresh;
    this.apiUrl = apiUrl;
  }

  async call(method, path, body, retried = false) {
    const headers = { Authorization: `Bearer ${this.token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${this.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 401 && !retried && this.refresh && (await this.refresh())) return this.call(method, path, body, true);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((data && data.Message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /** One page of GET /api/jobs: filters queue, state, type, user_id, article_id, q, since, until, limit, cursor. */
  search(filters = {}) {
    const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== undefined && v !== null && v !== ""));
    return this.call("GET", `/api/jobs?${params}`);
  }

  logs(jobId) {
    return this.call("GET", `/api/jobs/${encodeURIComponent(jobId)}/logs`);
  }

  duplicate(jobId) {
    return this.call("POST", `/api/jobs/${encodeURIComponent(jobId)}/duplicate`);
  }

  /** A bulk action to its end: each call's batch, following `next_cursor`; the summed counts. */
  async bulk(queue, { action, state, user_id: userId } = {}, { maxCalls = 100 } = {}) {
    const total = { action, matched: 0, done: 0, calls: 0 };
    let cursor = null;
    do {
      const body = { action };
      if (state) body.state = state;
      if (userId) body.user_id = userId;
      if (cursor) body.cursor = cursor;
      const answer = await this.call("POST", `/api/queues/${encodeURIComponent(queue)}/bulk`, body);
      total.matched += answer.matched;
      total.done += answer.done;
      total.calls += 1;
      cursor = answer.next_cursor || null;
    } while (cursor && total.calls < maxCalls);
    total.more = Boolean(cursor);
    return total;
  }
}
