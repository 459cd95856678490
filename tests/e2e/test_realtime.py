"""The real-time API on the local stack over real sockets: authentication, room rules, ordered
events, resume after a kill, cleanup on 410, and the Python client reconnecting and resuming on
its own when the gateway drops it (idle timeout and maximum age made short)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from inkwell_realtime import RealtimeClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import LocalStack, eventually, start_stack, stop_stack

APP = "tests.e2e.realtime_app:app"


def _stack(tmp_path_factory: pytest.TempPathFactory, name: str, **overrides: str) -> Iterator[LocalStack]:
    process, handle = start_stack(tmp_path_factory.mktemp(name), INKWELL_LOCAL_APP=APP, **overrides)
    try:
        yield handle
    finally:
        stop_stack(process)


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from _stack(tmp_path_factory, "realtime")


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose gateway drops connections idle for 1.5 s and closes any after 5 s."""
    yield from _stack(tmp_path_factory, "realtime-short", INKWELL_WS_IDLE_TIMEOUT="1.5", INKWELL_WS_MAX_AGE="5")


def run(coro: Any, timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


class People:
    """Users of one stack: the admin and editors created through the API."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.admin_token = stack.login()

    def user(self, role: str = "editor") -> tuple[dict[str, Any], str]:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        status, user, _ = self.stack.request(
            "POST",
            "/api/users",
            {"email": email, "password": "password-123-long-enough", "role": role},
            token=self.admin_token,
        )
        assert status == 201, user
        return user, self.stack.login(email, "password-123-long-enough")

    def ticket(self, token: str) -> str:
        status, body, _ = self.stack.request("POST", "/api/realtime/ticket", token=token)
        assert status == 200, body
        return str(body["ticket"])

    def article(self, token: str) -> str:
        status, body, _ = self.stack.request("POST", "/api/articles", {"title": "Live", "topic": "ws"}, token=token)
        assert status == 201, body
        return str(body["id"])


def publish(stack: LocalStack, **event: Any) -> None:
    status, body, _ = stack.request("POST", "/e2e/realtime/publish", event)
    assert status == 200 and body == {"published": True}, body


def status_event(article_id: str, author_id: str, n: int) -> dict[str, Any]:
    return {"kind": "article_status", "article_id": article_id, "author_id": author_id, "status": f"S{n}"}


async def handshake(url: str) -> int:
    try:
        async with connect(url, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


async def frames(ws: ClientConnection, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    got = []
    while len(got) < count:
        got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return got


async def answers(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` replies, skipping room events (an admin's connection also hears the admin
    room's `activity`, its own connect's audit event among them, at any moment)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        got += [f for f in await frames(ws, 1) if "seq" not in f]
    return got


async def request(ws: ClientConnection, frame: dict[str, Any], until: str | set[str]) -> list[dict[str, Any]]:
    """Send a frame; the frames received up to and including the first whose type is in `until`."""
    wanted = {until} if isinstance(until, str) else until
    await ws.send(json.dumps(frame))
    got: list[dict[str, Any]] = []
    while not got or got[-1]["type"] not in wanted:
        got += await frames(ws, 1)
    return got


@pytest.fixture(scope="module")
def people(rt: LocalStack) -> People:
    return People(rt)


# --- authentication ---------------------------------------------------------------------------------------


def test_a_ticket_opens_a_connection_once(rt, people):
    _, token = people.user()
    ticket = people.ticket(token)
    assert run(handshake(rt.ws(ticket=ticket))) == 101
    assert run(handshake(rt.ws(ticket=ticket))) == 401


def test_a_jwt_in_the_url_is_refused(rt, people):
    _, token = people.user("viewer")
    assert run(handshake(rt.ws() + "?token=" + token)) == 401


@pytest.mark.parametrize("params", [{}, {"ticket": "made-up"}, {"token": "not-a-jwt"}])
def test_missing_or_invalid_credentials_are_refused(rt, params):
    assert run(handshake(rt.ws(**params))) == 401


def test_a_revoked_token_and_its_tickets_are_refused(rt, people):
    _, token = people.user()
    ticket = people.ticket(token)
    status, _, _ = rt.request("POST", "/api/auth/logout", token=token)
    assert status == 204
    assert run(handshake(rt.ws(token))) == 401
    assert run(handshake(rt.ws(ticket=ticket))) == 401


# --- rooms ------------------------------------------------------------------------------------------------


def test_an_editor_cannot_follow_another_editors_article_but_its_author_and_admins_can(rt, people):
    _, author = people.user()
    _, other = people.user()
    article = people.article(author)
    room = f"article:{article}"

    async def subscribe(token: str) -> dict[str, Any]:
        async with connect(rt.ws(ticket=people.ticket(token))) as ws:
            return (await request(ws, {"action": "subscribe", "room": room}, until={"subscribed", "error"}))[-1]

    assert run(subscribe(other))["type"] == "error"
    assert run(subscribe(author)) == {"type": "subscribed", "room": room, "seq": 0}
    assert run(subscribe(people.admin_token))["type"] == "subscribed"


def test_ping_and_malformed_frames_keep_the_connection(rt, people):
    async def session() -> list[dict[str, Any]]:
        async with connect(rt.ws(people.admin_token)) as ws:
            await ws.send("{not json")
            await ws.send(json.dumps({"action": "ping"}))
            return await answers(ws, 2)

    replies = run(session())
    assert replies[0]["type"] == "error" and replies[1] == {"type": "pong"}


def test_a_frame_over_32_kb_is_refused(rt, people):
    async def session() -> bool:
        async with connect(rt.ws(people.admin_token)) as ws:
            await ws.send(json.dumps({"action": "ping", "pad": "x" * 40_000}))
            try:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            except Exception:  # the gateway closed the connection: refused too
                return True
            return bool(reply["type"] == "error")

    assert run(session())


# --- ordering, resume, stale connections ------------------------------------------------------------------


def test_events_arrive_in_order_with_seq_rising_by_one(rt, people):
    author, token = people.user()
    article = people.article(token)

    async def session() -> list[dict[str, Any]]:
        async with connect(rt.ws(ticket=people.ticket(token))) as ws:
            await request(ws, {"action": "subscribe", "room": f"article:{article}"}, until="subscribed")
            sender = asyncio.create_task(
                asyncio.to_thread(lambda: [publish(rt, **status_event(article, author["id"], n)) for n in range(12)])
            )
            got = await frames(ws, 24)  # each event reaches article:<id> and user:<author>
            await sender
            return got

    got = run(session())
    for room in (f"article:{article}", f"user:{author['id']}"):
        mine = [f for f in got if f["room"] == room]
        assert [f["seq"] for f in mine] == list(range(mine[0]["seq"], mine[0]["seq"] + 12))
        assert [f["data"]["status"] for f in mine] == [f"S{n}" for n in range(12)]
        assert all(set(f) == {"type", "room", "seq", "ts", "data"} for f in mine)


def test_a_client_killed_mid_stream_resumes_with_every_missed_event_and_no_duplicates(rt, people):
    author, token = people.user()
    article = people.article(token)
    room = f"article:{article}"

    async def scenario() -> list[int]:
        async with connect(rt.ws(ticket=people.ticket(token))) as ws:
            await request(ws, {"action": "subscribe", "room": room}, until="subscribed")
            for n in range(3):
                await asyncio.to_thread(publish, rt, **status_event(article, author["id"], n))
            seen = [f["seq"] for f in await frames(ws, 6) if f["room"] == room]
            ws.transport.abort()  # killed: no close handshake
        for n in range(3, 8):  # missed while away
            await asyncio.to_thread(publish, rt, **status_event(article, author["id"], n))
        async with connect(rt.ws(ticket=people.ticket(token))) as ws:
            replayed = await request(ws, {"action": "resume", "room": room, "after": seen[-1]}, until="resumed")
            return seen + [f["seq"] for f in replayed[:-1]]

    seqs = run(scenario())
    assert seqs == list(range(1, 9))


def test_a_410_removes_a_stale_connection(rt, people):
    # GIVEN a connection the gateway no longer knows, still recorded in the admin room
    db = rt.aws("dynamodb")
    stale = "stale" + uuid.uuid4().hex[:8]
    far = str(int(time.time()) + 3600)
    db.put_item(
        TableName=rt.resource_name("ws_connections"),
        Item={
            "connection_id": {"S": stale},
            "user_id": {"S": "ghost"},
            "email": {"S": "ghost@example.com"},
            "role": {"S": "admin"},
            "rooms": {"SS": ["admin"]},
            "connected_at": {"S": "2026-01-01T00:00:00.000Z"},
            "ttl": {"N": far},
            "expiry_day": {"S": "2099-01-01"},
        },
    )
    db.put_item(
        TableName=rt.resource_name("ws_members"),
        Item={"room": {"S": "admin"}, "connection_id": {"S": stale}, "ttl": {"N": far}, "expiry_day": {"S": "x"}},
    )

    # WHEN an admin event is sent, with a live admin listening
    async def session() -> dict[str, Any]:
        async with connect(rt.ws(people.admin_token)) as ws:
            await request(ws, {"action": "rooms"}, until="rooms")
            await asyncio.to_thread(publish, rt, kind="alert", level="warning", message="stale test")
            while True:  # the admin room also hears the audit's `activity`
                (frame,) = await frames(ws, 1)
                if frame["type"] == "system.alert":
                    return frame

    heard = run(session())
    # THEN the live one heard it and the stale one is gone
    assert heard["type"] == "system.alert" and heard["data"]["message"] == "stale test"
    key = {"connection_id": {"S": stale}}
    assert "Item" not in db.get_item(TableName=rt.resource_name("ws_connections"), Key=key)
    member = {"room": {"S": "admin"}, "connection_id": {"S": stale}}
    assert "Item" not in db.get_item(TableName=rt.resource_name("ws_members"), Key=member)


def test_disconnect_removes_the_connection_record(rt, people):
    _, token = people.user("viewer")
    db, table = rt.aws("dynamodb"), rt.resource_name("ws_connections")

    def record(connection_id: str) -> bool:
        return "Item" in db.get_item(TableName=table, Key={"connection_id": {"S": connection_id}})

    async def session() -> str:
        before = {c["id"] for c in rt.connections()}
        async with connect(rt.ws(token)) as ws:
            await request(ws, {"action": "ping"}, until="pong")
            (mine,) = [c["id"] for c in rt.connections() if c["id"] not in before]
            assert record(mine)
        return mine

    mine = run(session())
    eventually(lambda: not record(mine), timeout=5)


# --- the Python client ------------------------------------------------------------------------------------


class Feed:
    """Publishes article statuses from a thread, one every `gap` seconds, until stopped."""

    def __init__(self, stack: LocalStack, article: str, author: str, gap: float = 0.05) -> None:
        self.stack, self.article, self.author, self.gap = stack, article, author, gap
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            publish(self.stack, **status_event(self.article, self.author, self.sent))
            self.sent += 1
            self._stop.wait(self.gap)

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def client_for(stack: LocalStack, token: str, **options: Any) -> RealtimeClient:
    options.setdefault("backoff_first", 0.2)
    options.setdefault("backoff_cap", 1.0)
    return RealtimeClient(stack.http_url, token, ws_url=stack.ws_url + "/", **options)


async def watch(client: RealtimeClient, article: str, stack: LocalStack, author: str, seconds: float) -> list[str]:
    """Follow the article while a feed publishes for `seconds`; the statuses delivered."""
    seen: list[str] = []

    async def follow() -> None:
        async for status in client.article_status(article):
            seen.append(status.status)

    follower = asyncio.create_task(follow())
    await eventually_async(lambda: f"article:{article}" in client.cursors)
    with Feed(stack, article, author) as feed:
        await asyncio.sleep(seconds)
        await eventually_async(lambda: feed.sent > 5)  # a loaded machine publishes slower
    await eventually_async(lambda: len(seen) >= feed.sent, timeout=10)
    follower.cancel()
    assert feed.sent > 5
    assert seen == [f"S{n}" for n in range(feed.sent)]  # all of them, once each, in order
    return seen


async def eventually_async(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.05)


def test_the_python_client_sees_an_article_live_and_survives_a_killed_connection(rt, people):
    author, token = people.user()
    article = people.article(token)

    async def scenario() -> int:
        async with client_for(rt, token) as client:
            await client.wait_connected(10)

            async def kill_soon() -> None:
                await asyncio.sleep(0.6)
                client._ws.transport.abort()  # the network dies under the client

            killer = asyncio.create_task(kill_soon())
            await watch(client, article, rt, author["id"], seconds=1.5)
            await killer
            return client.connects

    assert run(scenario()) >= 2


def test_the_python_client_reconnects_and_resumes_when_the_gateway_ages_it_out(short):
    people = People(short)
    author, token = people.user()
    article = people.article(token)

    async def scenario() -> int:
        # pings keep it past the 1.5 s idle timeout; the gateway's 5 s cap closes it
        async with client_for(short, token, ping_interval=0.4, max_age=3600) as client:
            await client.wait_connected(10)
            await watch(client, article, short, author["id"], seconds=6.5)
            return client.connects

    assert run(scenario(), timeout=40) >= 2


def test_the_python_client_reconnects_after_an_idle_timeout(short):
    people = People(short)
    _, token = people.user("viewer")

    async def scenario() -> int:
        async with client_for(short, token, ping_interval=3600, max_age=3600) as client:
            await client.wait_connected(10)
            await eventually_async(lambda: client.connects >= 2, timeout=10)
            return client.connects

    assert run(scenario()) >= 2


def test_the_python_client_pings_to_stay_connected_and_reconnects_before_the_cap(short):
    people = People(short)
    _, token = people.user("viewer")

    async def scenario() -> tuple[int, int]:
        async with client_for(short, token, ping_interval=0.4, max_age=2.5) as client:
            await client.wait_connected(10)
            await asyncio.sleep(2.0)  # past the idle timeout, within the planned age
            early = client.connects
            await eventually_async(lambda: client.connects >= 2, timeout=5)
            return early, client.connects

    early, later = run(scenario())
    assert early == 1 and later >= 2


# --- issue 6's done-when, through the real generate route --------------------------------------------


def room_seqs(stack: LocalStack, room: str) -> list[int]:
    """The seqs the server stored for `room` (seq 0 is its counter)."""
    items = stack.aws("dynamodb").query(
        TableName=stack.resource_name("ws_events"),
        KeyConditionExpression="room = :r AND seq > :z",
        ExpressionAttributeValues={":r": {"S": room}, ":z": {"N": "0"}},
        ConsistentRead=True,
    )["Items"]
    return [int(i["seq"]["N"]) for i in items]


def test_an_author_sees_generation_live_across_a_lost_connection_and_an_admin_hears_the_job(rt, people):
    """POST /generate through the queue, the worker and the (slowed) generator: the author's
    client sees PROCESSING live, loses its connection, reconnects only once the article is
    PUBLISHED, and receives exactly the events it missed; the admin hears job and activity events."""
    state: dict[str, Any] = {"dropped": False}

    def article_status() -> str:
        status, body, _ = rt.request("GET", f"/api/articles/{state['article']}", token=state["token"])
        assert status == 200, body
        return str(body["status"])

    async def held_sleep(seconds: float) -> None:
        if state["dropped"] and seconds <= 1.0:  # a reconnect's backoff: come back after PUBLISHED
            await asyncio.to_thread(eventually, lambda: article_status() == "PUBLISHED", 20)
        await asyncio.sleep(seconds)

    async def scenario() -> None:
        async with client_for(rt, people.admin_token) as admin:
            await admin.wait_connected(10)
            heard: list[Any] = []

            async def hear() -> None:
                async for event in admin.dashboard_events():
                    heard.append(event)

            hearing = asyncio.create_task(hear())
            author, state["token"] = await asyncio.to_thread(people.user)  # user.create: an `activity`
            state["article"] = article = await asyncio.to_thread(people.article, state["token"])
            room = f"article:{article}"

            async with client_for(rt, state["token"], sleep=held_sleep) as client:
                await client.wait_connected(10)
                statuses: list[tuple[str, int]] = []  # (status, the connection it came on)
                everything = client.listen(room=room)

                async def follow() -> None:
                    async for change in client.article_status(article):
                        statuses.append((change.status, client.connects))

                follower = asyncio.create_task(follow())
                await eventually_async(lambda: room in client.cursors)
                subscribed_at = client.cursors[room].last
                slow = {"status": 200, "times": 1, "article_id": article, "delay": 2.0}
                assert rt.control("POST", "/generator/faults", slow)[0] == 204
                status, accepted, _ = await asyncio.to_thread(
                    rt.request, "POST", f"/api/articles/{article}/generate", None, state["token"]
                )
                assert status == 202, accepted

                await eventually_async(lambda: [s for s, _ in statuses] == ["PROCESSING"])
                state["dropped"] = True
                client._ws.transport.abort()  # the network dies while the generator works
                await eventually_async(lambda: len(statuses) == 2, timeout=25)
                follower.cancel()

                # PROCESSING live on the first connection, PUBLISHED replayed on the second
                assert statuses == [("PROCESSING", 1), ("PUBLISHED", 2)]
                # exactly the room's events since subscribing: none missed, none twice
                await eventually_async(lambda: room_seqs(rt, room)[-1] == client.cursors[room].last)
                got = [event.seq for event in everything.pending()]
                assert got == [s for s in room_seqs(rt, room) if s > subscribed_at]
                assert len(got) > 2  # job.progress as well as the two statuses

            job = accepted["job_id"]
            await eventually_async(
                lambda: (
                    {("job.completed", job), ("article.status", "PUBLISHED")}
                    <= {
                        (e.type, e.data.get("job_id") if e.type.startswith("job.") else e.data.get("status"))
                        for e in heard
                    }
                )
            )
            assert any(e.type == "job.progress" and e.data["job_id"] == job for e in heard)
            created = [e for e in heard if e.type == "activity" and e.data["action"] == "user.create"]
            assert [e.data["resource"]["id"] for e in created] == [author["id"]]
            hearing.cancel()

    run(scenario(), timeout=60)


# --- rooms above the fan-out threshold: shards through the stack's fan-out queue ---------------


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose rooms of more than one member are posted to in shards (3 groups)."""
    yield from _stack(tmp_path_factory, "realtime-sharded", INKWELL_FANOUT_THRESHOLD="1", INKWELL_FANOUT_GROUPS="3")


def test_a_sharded_room_hears_every_event_once_in_order_through_the_stacks_fan_out_function(sharded):
    admin = sharded.login()
    # GIVEN a connection the gateway no longer knows, recorded in the admin room long ago
    db, far = sharded.aws("dynamodb"), str(int(time.time()) + 3600)
    stale = "stale" + uuid.uuid4().hex[:8]
    db.put_item(
        TableName=sharded.resource_name("ws_connections"),
        Item={
            "connection_id": {"S": stale},
            "user_id": {"S": "ghost"},
            "email": {"S": "ghost@example.com"},
            "role": {"S": "admin"},
            "rooms": {"SS": ["admin"]},
            "connected_at": {"S": "2026-01-01T00:00:00.000Z"},
            "ttl": {"N": far},
            "expiry_day": {"S": "2099-01-01"},
        },
    )
    db.put_item(
        TableName=sharded.resource_name("ws_members"),
        Item={"room": {"S": "admin"}, "connection_id": {"S": stale}, "ttl": {"N": far}, "expiry_day": {"S": "x"}},
    )

    # WHEN six alerts go to an admin room of five live connections (and the stale one)
    async def session() -> list[list[dict[str, Any]]]:
        sockets = [await connect(sharded.ws(admin)) for _ in range(5)]
        try:
            for ws in sockets:
                await request(ws, {"action": "rooms"}, until="rooms")
            for n in range(6):
                await asyncio.to_thread(publish, sharded, kind="alert", level="info", message=f"A{n}")
            heard: list[list[dict[str, Any]]] = []
            for ws in sockets:
                alerts: list[dict[str, Any]] = []
                while len(alerts) < 6:  # the admin room also hears the audit's `activity`
                    alerts += [f for f in await frames(ws, 1, timeout=20) if f["type"] == "system.alert"]
                heard.append(alerts)
            return heard
        finally:
            for ws in sockets:
                await ws.close()

    heard = run(session(), timeout=90)
    # THEN each connection heard each alert once, in seq order, posted by the fan-out function
    for alerts in heard:
        assert [f["data"]["message"] for f in alerts] == [f"A{n}" for n in range(6)]
        seqs = [f["seq"] for f in alerts]
        assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert "fanout.fifo -> realtime_fanout" in sharded.log.read_text()
    # AND the stale connection was forgotten on the sharded path (its 410)
    key = {"connection_id": {"S": stale}}
    eventually(lambda: "Item" not in db.get_item(TableName=sharded.resource_name("ws_connections"), Key=key))
