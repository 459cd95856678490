"""Delivering events to rooms: an event is stored, then posted to the room's members.

`emit` sends one event to each of its rooms as the contract's envelope
`{"type","room","seq","ts","data"}`: for each room it takes the next seq from the room's atomic
counter and stores the envelope for `resume` (kept >= 24 h) before anything is posted, then
posts it to the room's members concurrently, if it has any (the counter counts them; a room of
more than INKWELL_FANOUT_THRESHOLD members is posted to in shards by parallel invocations of the
fan-out function instead, `fanout`). A room without a counter is skipped (neither stored nor
posted): joining a room creates its counter (`EventLog.open_room`) before the joiner learns its
seq, and the counter lives 30 days past the last join or event, so nobody can resume such a room.
An event to several rooms first reads which have a counter (one BatchGetItem). A payload over API
Gateway's 128 KB is refused (`PayloadTooLarge`) before any seq is taken. `emit_many` sends several
events of one type to one room for the cost of one: one reservation of n seqs, their envelopes in
BatchWriteItems of 25, one read of the members, then the posts (each connection gets them in seq
order); the audit log's `activity` goes this way, once per flush.

Inside a handler whose middleware flushes `WAITING`, a room that has a counter but no member (as
read at most RECHECK_SECONDS ago) does not store its events at once: they wait, in emit order, for
the end of the invocation (`flush`, the buffer's end flush, after the audit's, on success and on
error), which takes each room's seqs in one reservation (consecutive, in emit order), stores every
envelope in BatchWriteItems of 25 and posts them to whoever joined meanwhile. A room with members
hears at once (what waited for it first). The invocation remembers what it read of each room: an
event to several rooms reads those not read lately in one BatchGetItem, an event to one room such
a room by its reservation (sent at once). A killed invocation loses only the waiting events, of
rooms nobody was in; scripts and tests outside such a handler send everything at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from chalicelib import config, runtime, timeutil
from chalicelib.realtime import fanout, live, protocol
from chalicelib.realtime.protocol import PayloadTooLarge
from chalicelib.realtime.store import Connections, EventLog

log = logging.getLogger("inkwell.realtime")

RECHECK_SECONDS = 2.0  # an invocation reads a room's counter again (has it members now?) this often at most
WAITING_MAX = 100  # events an invocation keeps waiting at most; past that, they are stored at once

Pending = tuple[str, str, dict[str, Any]]  # an event not stored yet: (type, ts, data)


def emit(event_type: str, to: list[str], data: dict[str, Any]) -> dict[str, int]:
    """Send one event to each room of `to` that has a counter (a room no connection joined for
    the counter's retention is skipped: nobody can resume it); returns room -> seq of the rooms
    it was stored for now (not those whose event waits for the invocation's end, `flush`).
    Raises PayloadTooLarge."""
    targets = list(dict.fromkeys(to))
    ts = timeutil.iso_ms()
    protocol.check_size(event_type, targets, ts, data)
    waiting = WAITING.deferred()
    if waiting is not None:
        return {room: seqs[-1] for room, seqs in waiting.add(targets, [(event_type, ts, data)]).items()}
    store = live.event_log()
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
    waiting = WAITING.deferred()
    if waiting is not None:
        return waiting.add([room], fitting).get(room, [])[-len(fitting) :]
    sent = _send(live.event_log(), {room: fitting})
    return [sent[room][0] + n for n in range(len(fitting))] if room in sent else []


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
            members = live.connections()
            for room in listened:
                deliver(members, room, bodies[room], reserved[room][0])
    return reserved


def deliver(members: Connections, room: str, bodies: list[str], first_seq: int) -> None:
    """Post the room's stored envelopes (seqs from `first_seq`) to its members: here, or, for a
    room of more than INKWELL_FANOUT_THRESHOLD members, in shards through the fan-out queue
    (`fanout`), each posted by an invocation of its own."""
    recipients = members.recipients(room)
    if sum(len(ids) for ids in recipients.values()) > config.get().fanout_threshold:
        fanout.enqueue(room, recipients, bodies, first_seq)
        return
    for endpoint, connection_ids in recipients.items():
        live.post(members, endpoint, connection_ids, bodies)


# --- events to rooms nobody is in wait for the end of the invocation ---------------------------------


@dataclass
class Waiting:
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
            found = live.event_log().counters(stale)
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
        sent = _send(live.event_log(), events)
        now = monotonic()
        for room in events:
            first, has_members = sent.get(room, (0, False))
            self.read[room] = (room in sent, has_members, now)
        return {room: list(range(first, first + len(events[room]))) for room, (first, _) in sent.items()}


def flush() -> None:
    """`WAITING`'s end flush (app.py's middleware, after the audit's, on success and on error):
    store the waiting events, each room's with one reservation, all in BatchWriteItems of 25,
    and post them to whoever joined their rooms meanwhile. What is emitted after it begins goes
    at once."""
    waiting = WAITING.take()
    if waiting is not None:
        waiting.send(list(waiting.events))


WAITING = runtime.Buffer("realtime_waiting", Waiting, flush)
