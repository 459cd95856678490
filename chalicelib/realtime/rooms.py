"""Room names and who may be in which room: pure rules, unit-tested without AWS.

Rooms are `user:<id>` (every connection of that user), `admin` (every admin connection) and
`article:<id>` (joined by subscribing: the article's author and admins only). The same rule
decides who may `resume` a room, so a client may send `resume` before its `subscribe` has been
handled (API Gateway may run one connection's frames concurrently).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ADMIN = "admin"
_ROOM = re.compile(r"(?:admin|user:[A-Za-z0-9_-]{1,64}|article:[0-9a-f]{32})")
_ARTICLE = re.compile(r"article:([0-9a-f]{32})")


class RoomRefused(Exception):
    """The user may not join or read this room; the message says why (sent as an error frame)."""


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def article_room(article_id: str) -> str:
    return f"article:{article_id}"


def is_valid(room: Any) -> bool:
    return isinstance(room, str) and _ROOM.fullmatch(room) is not None


def article_id(room: str) -> str | None:
    match = _ARTICLE.fullmatch(room)
    return match.group(1) if match else None


def base_rooms(user_id: str, role: str) -> list[str]:
    """The rooms a connection joins on connect."""
    return [user_room(user_id)] + ([ADMIN] if role == "admin" else [])


def check_access(user_id: str, role: str, room: str, author_of: Callable[[str], str | None]) -> None:
    """Raise RoomRefused unless the user may hear `room`. `author_of(article_id)` gives the
    article's author, or None when there is no such article."""
    if not is_valid(room):
        raise RoomRefused(f"unknown room {str(room)[:80]!r}: expected admin, user:<id> or article:<id>")
    if room == ADMIN:
        if role != "admin":
            raise RoomRefused("only admins may join the admin room")
        return
    aid = article_id(room)
    if aid is None:  # user:<id>
        if room != user_room(user_id):
            raise RoomRefused("a connection hears only its own user room")
        return
    author = author_of(aid)
    if author is None:
        # Same answer for a missing article and someone else's: ids are not probed this way.
        raise RoomRefused(f"article {aid} does not exist" if role == "admin" else "not allowed to follow this article")
    if role != "admin" and author != user_id:
        raise RoomRefused("not allowed to follow this article")
