"""Sessions on the local stack over real sockets: logout and disabling a user close their open
WebSocket connections within 5 s (the management API's DELETE @connections), and only theirs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import LocalStack

PASSWORD = "password-123-long-enough"


def editor(stack: LocalStack) -> dict[str, Any]:
    email = f"session-{uuid.uuid4().hex[:8]}@example.com"
    status, user, _ = stack.request(
        "POST", "/api/users", {"email": email, "password": PASSWORD, "role": "editor"}, token=stack.login()
    )
    assert status == 201, user
    return dict(user)


def ticket_url(stack: LocalStack, token: str) -> str:
    status, body, _ = stack.request("POST", "/api/realtime/ticket", token=token)
    assert status == 200, body
    return stack.ws(ticket=body["ticket"])


async def closed_within(ws: ClientConnection, seconds: float) -> float | None:
    """Seconds until the server closed `ws`, or None when it was still open after `seconds`."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except ConnectionClosed:
        return time.monotonic() - started
    except TimeoutError:
        return None


async def still_open(ws: ClientConnection) -> bool:
    await ws.send(json.dumps({"action": "ping"}))
    async with asyncio.timeout(5):
        while True:
            if json.loads(await ws.recv()).get("type") == "pong":
                return True


def test_logout_closes_that_sessions_open_websocket_within_5_seconds(stack: LocalStack) -> None:
    user = editor(stack)
    leaving, staying = stack.login(user["email"], PASSWORD), stack.login(user["email"], PASSWORD)

    async def scenario() -> tuple[float | None, bool]:
        async with (
            connect(ticket_url(stack, leaving)) as closing,
            connect(ticket_url(stack, staying)) as other,
        ):
            await asyncio.sleep(0.3)  # $connect has returned
            status, body, _ = await asyncio.to_thread(stack.request, "POST", "/api/auth/logout", token=leaving)
            assert status == 204, body
            return await closed_within(closing, 5), await still_open(other)

    took, other_open = asyncio.run(scenario())
    assert took is not None, "the logged-out session's connection was still open after 5 s"
    assert other_open


def test_disabling_a_user_closes_all_their_websockets_within_5_seconds(stack: LocalStack) -> None:
    user = editor(stack)
    tokens = [stack.login(user["email"], PASSWORD) for _ in range(2)]

    async def scenario() -> list[float | None]:
        async with connect(ticket_url(stack, tokens[0])) as first, connect(ticket_url(stack, tokens[1])) as second:
            await asyncio.sleep(0.3)
            status, body, _ = await asyncio.to_thread(
                stack.request, "PATCH", f"/api/users/{user['id']}", {"disabled": True}, token=stack.login()
            )
            assert status == 200, body
            return list(await asyncio.gather(closed_within(first, 5), closed_within(second, 5)))

    assert None not in asyncio.run(scenario())
    assert stack.request("GET", "/api/auth/me", token=tokens[0])[0] == 401
