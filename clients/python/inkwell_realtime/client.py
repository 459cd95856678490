"""The Inkwell real-time client for Python (asyncio, `websockets`).

It gets a single-use ticket over REST, connects, and keeps the connection: it reconnects with
exponential backoff and jitter (1 s up to 30 s), re-subscribes its rooms, and resumes every room
after the last seq it delivered, so across a reconnect no event is missed and none is repeated.
It pings before API Gateway's 10-minute idle timeout and reconnects on its own before the
2-hour cap. Typed helpers follow the web app's hooks: `dashboard_events()`,
`article_status(article_id)` and `system_alerts()`.

    async with RealtimeClient("http://127.0.0.1:8000", token) as rt:
        async for status in rt.article_status(article_id):
            print(status.status)

Given the login's `refresh_token` (and `expires_at`), it keeps the access token fresh: it
refreshes when the token is due within a minute before asking for a ticket, and after a 401,
then asks again; `access_token()` answers a fresh one for the application's own REST calls,
and `on_tokens` hears each refresh answer (the refresh token rotates with each one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from inkwell_realtime.tracking import BACKOFF_CAP, BACKOFF_FIRST, RoomCursor, backoff_delay

log = logging.getLogger("inkwell_realtime")

IDLE_TIMEOUT = 600.0  # API Gateway closes a connection idle this long
MAX_AGE = 7200.0  # ... and any connection this old
DEFAULT_PING_INTERVAL = IDLE_TIMEOUT * 0.4
DEFAULT_MAX_AGE = MAX_AGE - 300.0
RENEW_BEFORE = 60.0  # refresh an access token due within this many seconds
DASHBOARD_TYPES = frozenset(
    {"article.status", "job.progress", "job.completed", "job.failed", "job.cancelled", "activity", "analytics.update"}
)
_REPLIES = frozenset({"pong", "subscribed", "unsubscribed", "resumed", "rooms", "error"})


class AuthError(Exception):
    """The API refused the token (expired, revoked, wrong): reconnecting cannot help."""


@dataclass(frozen=True)
class Event:
    type: str
    room: str
    seq: int
    ts: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ArticleStatus:
    article_id: str
    status: str
    job_id: str | None
    seq: int
    ts: str


@dataclass(frozen=True)
class SystemAlert:
    level: str
    message: str
    ts: str
    details: dict[str, Any] = field(default_factory=dict)


class Listener:
    """An async iterator over the events that match `types` and `room` (None: any)."""

    def __init__(self, owner: RealtimeClient, types: Iterable[str] | None, room: str | None) -> None:
        self._owner = owner
        self._types = frozenset(types) if types is not None else None
        self._room = room
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def offer(self, event: Event) -> None:
        if (self._types is None or event.type in self._types) and (self._room is None or event.room == self._room):
            self._queue.put_nowait(event)

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    async def get(self, timeout: float | None = None) -> Event:
        return await asyncio.wait_for(self._queue.get(), timeout)

    def pending(self) -> list[Event]:
        """The events received and not yet taken, without waiting."""
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

    def close(self) -> None:
        self._owner._listeners.discard(self)


class RealtimeClient:
    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        ws_url: str | None = None,
        rooms: Iterable[str] = (),
        ping_interval: float = DEFAULT_PING_INTERVAL,
        max_age: float = DEFAULT_MAX_AGE,
        backoff_first: float = BACKOFF_FIRST,
        backoff_cap: float = BACKOFF_CAP,
        gap_wait: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        refresh_token: str | None = None,
        expires_at: str | None = None,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.ws_url = ws_url
        self._token = token
        self._refresh_token = refresh_token
        self._expires_at = _epoch(expires_at)
        self._on_tokens = on_tokens
        self._clock = clock
        self._refreshing = threading.Lock()  # a refresh token works once: one refresh at a time
        self._ping_interval = ping_interval
        self._max_age = max_age
        self._backoff = (backoff_first, backoff_cap)
        self._gap_wait = gap_wait
        self._sleep = sleep
        self._rand = rand
        self._rooms: set[str] = set(rooms)  # rooms subscribed to (beyond the automatic ones)
        self.cursors: dict[str, RoomCursor[Event]] = {}
        self._listeners: set[Listener] = set()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._gap_checks: dict[str, asyncio.Task[None]] = {}
        self._sends: set[asyncio.Task[None]] = set()  # frames sent in the background, until sent
        self._closing = False
        self.connected = asyncio.Event()
        self.connects = 0  # successful connections so far
        self.errors: list[dict[str, Any]] = []  # error frames from the server
        self.failure: BaseException | None = None  # why the client stopped, when it did

    # --- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> RealtimeClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="inkwell-realtime")

    async def wait_connected(self, timeout: float | None = None) -> None:
        waiter = asyncio.ensure_future(self.connected.wait())
        watched = {waiter, self._task} if self._task else {waiter}
        done, _ = await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self.failure:
                raise self.failure
            raise TimeoutError("not connected")

    async def close(self) -> None:
        self._closing = True
        for task in [*self._gap_checks.values(), *self._sends]:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # --- rooms and events ----------------------------------------------------------------------------

    async def subscribe(self, room: str) -> None:
        """Follow `room` (`article:<id>`), now and after every reconnect."""
        self._rooms.add(room)
        await self._send({"action": "subscribe", "room": room})

    async def unsubscribe(self, room: str) -> None:
        self._rooms.discard(room)
        self.cursors.pop(room, None)
        await self._send({"action": "unsubscribe", "room": room})

    def listen(self, types: Iterable[str] | None = None, room: str | None = None) -> Listener:
        listener = Listener(self, types, room)
        self._listeners.add(listener)
        return listener

    async def dashboard_events(self) -> AsyncIterator[Event]:
        """What the queue dashboard shows live: job, article, activity and analytics events of
        the admin room (admins only)."""
        listener = self.listen(DASHBOARD_TYPES, "admin")
        try:
            async for event in listener:
                yield event
        finally:
            listener.close()

    async def article_status(self, article_id: str) -> AsyncIterator[ArticleStatus]:
        """One article's status changes (its author or an admin)."""
        room = f"article:{article_id}"
        listener = self.listen({"article.status"}, room)
        try:
            await self.subscribe(room)
            async for event in listener:
                yield ArticleStatus(
                    event.data["article_id"], event.data["status"], event.data.get("job_id"), event.seq, event.ts
                )
        finally:
            listener.close()

    async def system_alerts(self) -> AsyncIterator[SystemAlert]:
        listener = self.listen({"system.alert"}, "admin")
        try:
            async for event in listener:
                details = {k: v for k, v in event.data.items() if k not in ("level", "message")}
                yield SystemAlert(event.data["level"], event.data["message"], event.ts, details)
        finally:
            listener.close()

    # --- the connection loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            planned = False
            try:
                ticket = await asyncio.to_thread(self._fetch_ticket)
                url = self.ws_url or ticket.get("url")
                if not url:
                    raise AuthError("no WebSocket URL: pass ws_url=")
                separator = "&" if "?" in url else "?"
                target = f"{url}{separator}ticket={urllib.parse.quote(ticket['ticket'])}"
                async with connect(target, ping_interval=None, max_size=2**20, open_timeout=10) as ws:
                    self._ws = ws
                    attempt = 0
                    self.connects += 1
                    planned = await self._session(ws)
            except AuthError as exc:
                self.failure = exc
                log.error("realtime client stopped: %s", exc)
                return
            except (OSError, TimeoutError, WebSocketException, ValueError, KeyError) as exc:
                if isinstance(exc, InvalidStatus):
                    log.warning("handshake refused: HTTP %s", exc.response.status_code)
                else:
                    log.warning("realtime connection failed: %r", exc)
            finally:
                self._ws = None
                self.connected.clear()
            if self._closing:
                return
            if not planned:
                delay = backoff_delay(attempt, self._rand(), *self._backoff)
                attempt += 1
                log.info("reconnecting in %.1f s", delay)
                await self._sleep(delay)

    async def _session(self, ws: ClientConnection) -> bool:
        """Run one connection; True when it ended because it reached its planned age."""
        await self._greet(ws)
        self.connected.set()
        reader = asyncio.create_task(self._read(ws))
        pinger = asyncio.create_task(self._ping(ws))
        aging = asyncio.create_task(self._sleep(self._max_age))
        try:
            done, _ = await asyncio.wait({reader, aging}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, pinger, aging):
                task.cancel()
            await asyncio.gather(reader, pinger, aging, return_exceptions=True)
        if aging in done:
            log.info("connection reached its planned age; reconnecting")
            with contextlib.suppress(Exception):
                await ws.close()
            return True
        return False

    async def _greet(self, ws: ClientConnection) -> None:
        frames: list[dict[str, Any]] = [{"action": "rooms"}]
        frames += [{"action": "subscribe", "room": room} for room in sorted(self._rooms)]
        frames += [{"action": "resume", "room": room, "after": cur.last} for room, cur in sorted(self.cursors.items())]
        for frame in frames:
            await ws.send(json.dumps(frame))

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._handle(raw)

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await self._sleep(self._ping_interval)
            await ws.send('{"action":"ping"}')

    def _send_soon(self, frame: dict[str, Any]) -> None:
        """Send `frame` from a synchronous frame handler. The loop keeps only a weak reference
        to a task, so the task is kept here until it is done."""
        task = asyncio.ensure_future(self._send(frame))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is not None:  # open (set once the handshake is done), possibly still greeting
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(frame))
        # Not connected: the next connection's greeting sends subscriptions and resumes.

    # --- incoming frames -----------------------------------------------------------------------------

    def _handle(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            kind = msg["type"]
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a frame that is not a message: %.80r", raw)
            return
        if kind not in _REPLIES and isinstance(msg.get("seq"), int) and isinstance(msg.get("room"), str):
            self._deliver(Event(kind, msg["room"], msg["seq"], msg.get("ts", ""), msg.get("data") or {}))
        elif kind == "rooms":
            for room, seq in (msg.get("rooms") or {}).items():
                self.cursors.setdefault(room, RoomCursor(int(seq)))
        elif kind == "subscribed":
            self.cursors.setdefault(msg["room"], RoomCursor(int(msg.get("seq") or 0)))
        elif kind == "resumed":
            self._resumed(msg)
        elif kind == "error":
            self.errors.append(msg)
            log.warning("server error frame: %s", msg.get("message"))

    def _deliver(self, event: Event) -> None:
        cursor = self.cursors.get(event.room)
        if cursor is None:  # an event before the greeting's answer: start from it
            cursor = self.cursors[event.room] = RoomCursor(event.seq - 1)
        self._dispatch(cursor.accept(event.seq, event))
        if cursor.has_gap and event.room not in self._gap_checks:
            self._gap_checks[event.room] = asyncio.ensure_future(self._fill_gap(event.room))

    def _dispatch(self, ready: list[Event]) -> None:
        for event in ready:
            for listener in list(self._listeners):
                listener.offer(event)

    async def _fill_gap(self, room: str) -> None:
        """An event overtook an earlier one; if the earlier one does not follow soon, ask for it."""
        try:
            await self._sleep(self._gap_wait)
            cursor = self.cursors.get(room)
            if cursor is not None and cursor.has_gap:
                await self._send({"action": "resume", "room": room, "after": cursor.last})
        finally:
            self._gap_checks.pop(room, None)

    def _resumed(self, msg: dict[str, Any]) -> None:
        room = msg.get("room")
        cursor = self.cursors.get(room) if isinstance(room, str) else None
        if cursor is None:
            return
        if msg.get("complete", True):
            self._dispatch(cursor.settle())
        elif isinstance(msg.get("next_after"), int):
            self._send_soon({"action": "resume", "room": room, "after": msg["next_after"]})

    # --- REST ----------------------------------------------------------------------------------------

    def _fetch_ticket(self) -> dict[str, Any]:
        token = self._fresh_token()
        status, body = self._post("/api/realtime/ticket", None, token)
        if status == 401 and self._refresh_token:  # expired or refused: refresh once, ask again
            status, body = self._post("/api/realtime/ticket", None, self._refreshed(token))
        if status in (401, 403):
            raise AuthError(f"ticket refused: HTTP {status}")
        if status != 200:
            raise OSError(f"ticket request failed: HTTP {status}")
        return dict(body)

    # --- the access token ------------------------------------------------------------------------------

    async def access_token(self) -> str:
        """The access token, refreshed first when it is due (for the application's REST calls)."""
        return await asyncio.to_thread(self._fresh_token)

    def _fresh_token(self) -> str:
        due = self._expires_at is not None and self._expires_at - self._clock() <= RENEW_BEFORE
        return self._refreshed(self._token) if due and self._refresh_token else self._token

    def _refreshed(self, stale: str) -> str:
        """A new access token (AuthError when the session has ended); a caller that waited while
        another refreshed gets that one."""
        with self._refreshing:
            if self._token != stale:
                return self._token
            status, body = self._post("/api/auth/refresh", {"refresh_token": self._refresh_token}, None)
            if status != 200:
                raise AuthError(f"refresh refused: HTTP {status}; log in again")
            self._token, self._refresh_token = body["token"], body["refresh_token"]
            self._expires_at = _epoch(body.get("expires_at"))
            if self._on_tokens:
                self._on_tokens(body)
            return self._token

    def _post(self, path: str, body: dict[str, Any] | None, token: str | None) -> tuple[int, Any]:
        """POST JSON to the REST API: (status, parsed body); tests replace it."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
