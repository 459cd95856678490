"""Every server-to-client event type, in one place, and the listeners that feed them.

An emitter sends one event to each of its rooms as the contract's envelope
`{"type","room","seq","ts","data"}`: for each room it takes the next seq from the room's atomic
counter and stores the envelope for `resume` (kept >= 24 h) before anything is posted, then
posts it to the room's members concurrently, if it has any (the counter counts them; a room of
more than INKWELL_FANOUT_THRESHOLD members is posted to in shards by parallel invocations of the
fan-out function instead, `fanout`). A room
without a counter is skipped (neither stored nor posted): joining a room creates its counter
(`EventLog.open_room`) before the joiner learns its seq, and the counter lives 30 days past the
last join or event, so nobody can resume such a room. An event to several rooms first reads
which have a counter (one BatchGetItem). A payload over API Gateway's 128 KB is refused
(`PayloadTooLarge`) before any seq is taken. `emit_many` sends several events of one type to one
room for the cost of one: one reservation of n seqs, their envelopes in BatchWriteItems of 25,
one read of the members, then the posts (each connection gets them in seq order); the audit
log's `activity` goes this way, once per flush.

Inside a handler that app.py's middleware runs, a room that has a counter but no member (as read
at most RECHECK_SECONDS ago) does not store its events at once: they wait, in emit order, for the
end of the invocation (`flush`, an end hook after the audit flush, on success and on error), which
takes each room's seqs in one reservation (consecutive, in emit order), stores every envelope in
BatchWriteItems of 25 and posts them to whoever joined meanwhile. A room with members hears at
once (what waited for it first). The invocation remembers what it read of each room: an event to
several rooms reads those not read lately in one BatchGetItem, an event to one room such a room
by its reservation (sent at once). A killed invocation loses only the waiting events, of rooms
nobody was in; scripts and tests outside such a handler send everything at once.

| emitter                  | type                          | rooms                                  |
|--------------------------|-------------------------------|----------------------------------------|
| emit_article_status      | article.status                | article:<id>, user:<author>, admin     |
| emit_job_progress        | job.progress                  | article:<id> (when about one), admin   |
| emit_job_finished        | job.completed / failed / cancelled | admin, user:<who caused it>       |
| emit_activity(ies)       | activity                      | admin                                  |
| emit_analytics_update    | analytics.update              | admin                                  |
| emit_system_alert        | system.alert                  | admin                                  |

The listeners at the bottom (`on_*`) are subscribed to `chalicelib.events` by app.py: publishers
never call these functions directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, cast

from chalicelib import aws, config, events, runtime, timeutil
from chalicelib.realtime import fanout, protocol, rooms
from chalicelib.realtime.protocol import PayloadTooLarge
from chalicelib.realtime.sender import sender
from chalicelib.realtime.store import Connections, EventLog

log = logging.getLogger("inkwell.realtime")

ANALYTICS_UPDATE_SECONDS = 5.0  # at most one analytics.update per article this often
GONE_GRACE_SECONDS = 30.0  # a 410 this soon after $connect may mean "not open yet" (see forget)
RECHECK_SECONDS = 2.0  # an invocation reads a room's counter again (has it members now?) this often at most
WAITING_MAX = 100  # events an invocation keeps waiting at most; past that, they are stored at once
_WAITING = "realtime_waiting"

__all__ = [
    "ANALYTICS_UPDATE_SECONDS",
    "PayloadTooLarge",
    "emit",
    "emit_activities",
    "emit_activity",
    "emit_analytics_update",
    "emit_article_status",
    "emit_many",
    "emit_job_finished",
    "emit_job_progress",
    "emit_system_alert",
]


def connections() -> Connections:
    return Connections(aws.table("ws_connections"), aws.table("ws_members"), event_log())


def event_log() -> EventLog:
    return EventLog(aws.table("ws_events"))


def emit(event_type: str, to: list[str], data: dict[str, Any]) -> dict[str, int]:
    """Send one event to each room of `to` that has a counter (a room no connection joined for
    the counter's retention is skipped: nobody can resume it); returns room -> seq of the rooms
    it was stored for now (not those whose event waits for the invocation's end, `flush`).
    Raises PayloadTooLarge."""
    targets = list(dict.fromkeys(to))
    ts = timeutil.iso_ms()
    protocol.check_size(event_type, targets, ts, data)
    waiting = _waiting()
    if waiting is not None:
        return {room: seqs[-1] for room, seqs in waiting.add(targets, [(event_type, ts, data)]).items()}
    store = event_log()
    if len(targets) > 1:
        targets = store.opened(targets)  # one read, rather than a reservation refused per room
    sent = _send(store, {room: [(event_type, ts, data)] for room in targets})
    return {room: first for room, (first, _) in sent.items()}


def emit_many(event_type: str, room: str, datas: list[dict[str, Any]]) -> list[int]:
    """Send events of one type to one room, in order; returns their seqs (consecutive; none when
    they wait for the invocation's end). Costs one UpdateItem (the seqs reserved at once), a
    BatchWriteItem per 25 envelopes (stored before any post; raises store.EventsNotStored when
    DynamoDB keeps refusing) and one Query (the room's members), whatever their number. An
    event over the size limit is left out (logged)."""
    ts = timeutil.iso_ms()
    fitting: list[Pending] = []
    for data in datas:
        try:
            protocol.check_size(event_type, [room], ts, data)
        except PayloadTooLarge as exc:
            log.warning("%s left out of a batch for %s: %s", event_type, room, exc)
        else:
            fitting.append((event_type, ts, data))
    if not fitting:
        return []
    waiting = _waiting()
    if waiting is not None:
        return waiting.add([room], fitting).get(room, [])[-len(fitting) :]
    sent = _send(event_log(), {room: fitting})
    return [sent[room][0] + n for n in range(len(fitting))] if room in sent else []


Pending = tuple[str, str, dict[str, Any]]  # an event not stored yet: (type, ts, data)


def _send(store: EventLog, events: dict[str, list[Pending]]) -> dict[str, tuple[int, bool]]:
    """Store each room's events under consecutive seqs in their order (one reservation per room;
    a room without a counter is skipped), every envelope in BatchWriteItems of 25 before any
    post, then post them to the rooms that have members. Returns room -> (first seq, whether it
    may have members) for the rooms stored."""
    reserved: dict[str, tuple[int, bool]] = {}
    bodies: dict[str, list[str]] = {}
    for room, pending in events.items():
        answer = store.reserve(room, len(pending))
        if answer is None:
            continue
        reserved[room] = answer
        bodies[room] = [
            protocol.dumps(protocol.envelope(event_type, room, answer[0] + n, ts, data))
            for n, (event_type, ts, data) in enumerate(pending)
        ]
    if reserved:
        store.append([(room, reserved[room][0] + n, body) for room in reserved for n, body in enumerate(bodies[room])])
        listened = [room for room, (_, has_members) in reserved.items() if has_members]
        if listened:
            members = connections()
            for room in listened:
                deliver(members, room, bodies[room], reserved[room][0])
    return reserved


# --- events to rooms nobody is in wait for the end of the invocation ---------------------------------


@dataclass
class _Waiting:
    """The running invocation's rooms as last read, and the events waiting for its end (`flush`)
    because their rooms had no member then."""

    read: dict[str, tuple[bool, bool, float]] = field(default_factory=dict)  # room -> counter?, members?, when
    events: dict[str, list[Pending]] = field(default_factory=dict)  # room -> its waiting events, in emit order

    def add(self, targets: list[str], pending: list[Pending]) -> dict[str, list[int]]:
        """Keep the events for the targets' rooms that have a counter, and send at once those of
        the rooms that have members (after what waited for them); room -> seqs of all it sent.
        A room not read in the last RECHECK_SECONDS is read again: the targets of an event to
        several rooms in one BatchGetItem; the room of an event to one room by sending it at once
        (its reservation says whether the counter exists and has members, as for emit)."""
        now = monotonic()
        stale = [room for room in targets if room not in self.read or now - self.read[room][2] >= RECHECK_SECONDS]
        if len(targets) > 1 and stale:
            found = event_log().counters(stale)
            self.read.update({room: (room in found, found.get(room, False), now) for room in stale})
            stale = []
        at_once = []
        for room in targets:
            counted, has_members, _ = (True, True, now) if room in stale else self.read[room]
            if counted:
                self.events.setdefault(room, []).extend(pending)
                at_once += [room] if has_members else []
        if sum(len(waiting) for waiting in self.events.values()) > WAITING_MAX:
            at_once = list(self.events)
        return self.send(at_once)

    def send(self, targets: list[str]) -> dict[str, list[int]]:
        events = {room: self.events.pop(room) for room in targets if room in self.events}
        if not events:
            return {}
        sent = _send(event_log(), events)
        now = monotonic()
        for room in events:
            first, has_members = sent.get(room, (0, False))
            self.read[room] = (room in sent, has_members, now)
        return {room: list(range(first, first + len(events[room]))) for room, (first, _) in sent.items()}


def _waiting() -> _Waiting | None:
    """The running invocation's waiting events, when its end stores them (app.py's middleware runs
    `flush`); None elsewhere (scripts, tests) and once `flush` ran: events then go at once."""
    inv = runtime.peek()
    if inv is None or flush not in inv.end_hooks:
        return None
    if _WAITING not in inv.extras:
        inv.extras[_WAITING] = _Waiting()
    return cast(_Waiting | None, inv.extras[_WAITING])


def flush() -> None:
    """End of invocation (app.py's middleware, after the audit flush, on success and on error):
    store the waiting events, each room's with one reservation, all in BatchWriteItems of 25,
    and post them to whoever joined their rooms meanwhile."""
    inv = runtime.peek()
    if inv is None:
        return
    waiting = inv.extras.get(_WAITING)
    inv.extras[_WAITING] = None  # whatever is emitted after this goes at once
    if waiting is not None:
        waiting.send(list(waiting.events))


def deliver(members: Connections, room: str, bodies: list[str], first_seq: int) -> None:
    """Post the room's stored envelopes (seqs from `first_seq`) to its members: here, or, for a
    room of more than INKWELL_FANOUT_THRESHOLD members, in shards through the fan-out queue
    (`fanout`), each posted by an invocation of its own."""
    recipients = members.recipients(room)
    if sum(len(ids) for ids in recipients.values()) > config.get().fanout_threshold:
        fanout.enqueue(room, recipients, bodies, first_seq)
        return
    for endpoint, connection_ids in recipients.items():
        fan_out(members, endpoint, connection_ids, bodies)


def fan_out(members: Connections | None, endpoint: str | None, connection_ids: list[str], bodies: list[str]) -> None:
    """Post to the connections, each hearing `bodies` in order; the configured management endpoint
    wins over the one each connection recorded at `$connect` (which lets any handler post even
    without configuration). `members` (built when None and a connection is gone) forgets 410s."""
    out = sender(endpoint)
    result = (
        out.broadcast(connection_ids, bodies[0]) if len(bodies) == 1 else out.broadcast_many(connection_ids, bodies)
    )
    for connection_id in result.gone:
        members = members or connections()
        forget(members, connection_id)


def on_sessions_revoked(event: events.SessionsRevoked) -> None:
    """Close the live WebSocket connections of the revoked sessions through the management API
    (`DELETE @connections/{id}`) and forget them at once, so no event reaches them meanwhile;
    API Gateway then runs `$disconnect`."""
    members = connections()
    for conn in members.of_user(event.user_id):
        sid = conn.get("jti")
        if (event.sids is not None and sid not in event.sids) or sid in event.kept:
            continue
        try:
            sender(conn.get("endpoint")).close(conn["connection_id"])
        except Exception:  # the frame check refuses it anyway, and the TTL removes it
            log.warning("could not close connection %s of a revoked session", conn["connection_id"], exc_info=True)
        members.close(conn["connection_id"])


def forget(members: Connections, connection_id: str) -> None:
    """Drop a connection API Gateway no longer knows (410): its $disconnect never ran.

    A connection opened in the last GONE_GRACE_SECONDS is kept: API Gateway answers 410 until
    `$connect` has returned, and the record is written inside `$connect`. Were it dropped, the
    client would be left on a live connection the server no longer knows. A young connection
    that really went away gets its `$disconnect` (or, failing that, its TTL)."""
    try:
        members.close(connection_id, opened_before=timeutil.iso_ms(timeutil.now() - GONE_GRACE_SECONDS))
    except Exception:  # best effort: the TTL removes it anyway
        log.warning("could not remove gone connection %s", connection_id, exc_info=True)


# --- the event types -----------------------------------------------------------------------------


def emit_article_status(article_id: str, status: str, author_id: str, job_id: str | None = None) -> dict[str, int]:
    return emit(
        "article.status",
        [rooms.article_room(article_id), rooms.user_room(author_id), rooms.ADMIN],
        {"article_id": article_id, "status": status, "job_id": job_id},
    )


def emit_job_progress(job_id: str, queue: str, progress: int, article_id: str | None = None) -> dict[str, int]:
    to = ([rooms.article_room(article_id)] if article_id else []) + [rooms.ADMIN]
    return emit("job.progress", to, {"job_id": job_id, "queue": queue, "progress": progress})


def emit_job_finished(
    outcome: str,
    job_id: str,
    queue: str,
    attempts: int,
    user_id: str | None = None,
    error: Any = None,
) -> dict[str, int]:
    """`outcome` is completed | failed | cancelled."""
    if outcome not in ("completed", "failed", "cancelled"):
        raise ValueError(f"outcome must be completed, failed or cancelled, not {outcome!r}")
    data: dict[str, Any] = {"job_id": job_id, "queue": queue, "attempts": attempts}
    if error is not None:
        data["error"] = error
    to = [rooms.ADMIN] + ([rooms.user_room(user_id)] if user_id else [])
    return emit(f"job.{outcome}", to, data)


def emit_activity(audit_event: dict[str, Any]) -> dict[str, int]:
    return emit("activity", [rooms.ADMIN], audit_event)


def emit_activities(audit_events: list[dict[str, Any]]) -> list[int]:
    """`activity` for each audit event, in order, at the cost of one event (`emit_many`)."""
    return emit_many("activity", rooms.ADMIN, audit_events)


def emit_analytics_update(data: dict[str, Any]) -> dict[str, int]:
    """`data`: `{"article_id"?, "counts"?, "report"?}`."""
    return emit("analytics.update", [rooms.ADMIN], data)


def emit_system_alert(level: str, message: str, details: dict[str, Any] | None = None) -> dict[str, int]:
    return emit("system.alert", [rooms.ADMIN], {**(details or {}), "level": level, "message": message})


# --- listeners -------------------------------------------------------------------------------------


def on_job_event(event: events.JobEvent) -> None:
    job = event.job
    payload = job.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    article_id = payload.get("article_id") if job.get("queue") == "articles" else None
    if event.kind == "progress":
        emit_job_progress(job["id"], job["queue"], int(job.get("progress") or 0), article_id)
    elif event.kind in ("completed", "failed", "cancelled"):
        error = event.error if event.error is not None else job.get("error")
        emit_job_finished(
            event.kind,
            job["id"],
            job["queue"],
            int(job.get("attempts") or 0),
            job.get("user_id"),
            error if event.kind == "failed" else None,
        )


def on_article_status(event: events.ArticleStatusChanged) -> None:
    emit_article_status(event.article_id, event.status, event.author_id, event.job_id)


def on_alert(event: events.Alert) -> None:
    emit_system_alert(event.level, event.message, event.details)


def on_audit(event: events.AuditRecorded) -> None:
    """`activity` for every audit event, as `GET /api/audit` lists them: the audit log publishes
    them once per flush, and they go out together (`emit_many`)."""
    emit_activities(list(event.events))


def on_report_stored(event: events.ReportStored) -> None:
    """`analytics.update` with the report's totals, when an analytics report is (re)computed."""
    emit_analytics_update({"report": {"period": event.period, "key": event.key, "total": event.total}})


def on_analytics(event: events.AnalyticsRecorded) -> None:
    """Send the article's counts as `analytics.update` unless one went for this article in the
    last ANALYTICS_UPDATE_SECONDS (content.analytics keeps the counts and the claim)."""
    from chalicelib.content import analytics  # pydantic (the request model): not at import

    now = timeutil.now()
    if due(float(event.announce_after), now) and analytics.counts().claim(
        event.article_id, event.announce_after, now + ANALYTICS_UPDATE_SECONDS
    ):
        emit_analytics_update({"article_id": event.article_id, "counts": event.counts})


def due(next_update: float, now: float) -> bool:
    return now >= next_update
