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

export const IDLE_TIMEOUT_MS = 600_000;
export const MAX_AGE_MS = 7_200_000;
export const DASHBOARD_TYPES = new Set([
  "article.status", "job.progress", "job.completed", "job.failed", "activity", "analytics.update",
]);
const REPLIES = new Set(["pong", "subscribed", "unsubscribed", "resumed", "rooms", "error"]);

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

export class RealtimeClient {
  /**
   * @param {object} options
   * @param {string} options.token       the JWT from POST /api/auth/login
   * @param {string} [options.apiUrl]    the REST API's origin ("" for the page's own)
   * @param {string} [options.wsUrl]     ws(s):// URL; default: the `url` the ticket answer gives
   * @param {number} [options.pingIntervalMs]
   * @param {number} [options.maxAgeMs]  reconnect before API Gateway's 2-hour cap
   */
  constructor({
    token, apiUrl = "", wsUrl = null, pingIntervalMs = IDLE_TIMEOUT_MS * 0.4, maxAgeMs = MAX_AGE_MS - 300_000,
    backoffFirst = 1, backoffCap = 30, gapWaitMs = 2000, random = Math.random,
  }) {
    Object.assign(this, { token, apiUrl: apiUrl.replace(/\/$/, ""), wsUrl, pingIntervalMs, maxAgeMs });
    this.backoff = [backoffFirst, backoffCap];
    this.gapWaitMs = gapWaitMs;
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
  }

  // --- lifecycle -------------------------------------------------------------------------------

  start() {
    this.closing = false;
    this.connect();
    return this;
  }

  close() {
    this.closing = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.gapChecks.clear();
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
    this.send({ action: "unsubscribe", room });
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

  /** `handler({level, message, details, ts})` for system alerts (admins). */
  onSystemAlert(handler) {
    return this.on((e) => {
      const { level, message, ...details } = e.data;
      handler({ level, message, details, ts: e.ts });
    }, { types: new Set(["system.alert"]), room: "admin" });
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
  }

  greet() {
    const frames = [{ action: "rooms" }];
    for (const room of [...this.rooms].sort()) frames.push({ action: "subscribe", room });
    for (const [room, cursor] of this.cursors) frames.push({ action: "resume", room, after: cursor.last });
    for (const frame of frames) this.ws.send(JSON.stringify(frame));
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
      }
    } else if (msg.type === "subscribed") {
      if (!this.cursors.has(msg.room)) this.cursors.set(msg.room, new RoomCursor(msg.seq || 0));
    } else if (msg.type === "resumed") {
      const cursor = this.cursors.get(msg.room);
      if (!cursor) return;
      if (msg.complete !== false) this.dispatch(cursor.settle());
      else this.send({ action: "resume", room: msg.room, after: msg.next_after });
    } else if (msg.type === "error") {
      this.emitError(msg);
    }
  }

  deliver(event) {
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
          this.send({ action: "resume", room: event.room, after: cursor.last });
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

  async fetchTicket() {
    const response = await fetch(`${this.apiUrl}/api/realtime/ticket`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
    });
    if (response.status === 401 || response.status === 403) throw new AuthError(`ticket refused: HTTP ${response.status}`);
    if (!response.ok) throw new Error(`ticket request failed: HTTP ${response.status}`);
    return response.json();
  }
}
