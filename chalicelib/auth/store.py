"""DynamoDB gateways for users, sessions and refresh tokens (login attempts: `gate`), and a
user's public shape: what checking a session needs, with no key (a function that only reads
sessions, as the WebSocket ones do, imports this, not `service`, which reads the JWT secret)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil


class EmailTaken(Exception):
    pass


class Users:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, email: str, password_hash: str, role: str) -> dict[str, Any]:
        user = {
            "id": uuid.uuid4().hex,
            "email": email,
            "role": role,
            "password_hash": password_hash,
            "created_at": timeutil.iso(),
        }
        client = self._table.meta.client
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": {"id": f"email#{email}", "user_id": user["id"]},
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": user,
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                ]
            )
        except client.exceptions.TransactionCanceledException:
            raise EmailTaken(email) from None
        return user

    def by_email(self, email: str) -> dict[str, Any] | None:
        result = self._table.query(IndexName="by_email", KeyConditionExpression=Key("email").eq(email), Limit=1)
        items = result.get("Items", [])
        return items[0] if items else None

    def get(self, user_id: str) -> dict[str, Any] | None:
        if user_id.startswith("email#"):
            return None
        return self._table.get_item(Key={"id": user_id}, ConsistentRead=True).get("Item")

    def by_role(self, role: str, limit: int, start: dict[str, Any] | None = None) -> tuple[list[dict], dict | None]:
        """A page of the users of `role`, oldest first (the `by_role` index; guard items have no role)."""
        kwargs: dict[str, Any] = {
            "IndexName": "by_role",
            "KeyConditionExpression": Key("role").eq(role),
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        result = self._table.query(**kwargs)
        return result.get("Items", []), result.get("LastEvaluatedKey")

    def update(
        self, user: dict[str, Any], changes: dict[str, Any], other_admin: str | None = None
    ) -> dict[str, Any] | None:
        """Apply `changes` to `user` as read (its role and disabled flag unchanged meanwhile),
        with `other_admin` still an active admin when given, in one transaction: the updated
        user, or None when a condition failed (the caller reads again)."""
        names = {f"#f{i}": k for i, k in enumerate(changes)}
        values = {f":v{i}": v for i, v in enumerate(changes.values())}
        values.update({":role": user["role"], ":f": False})
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table.name,
                    "Key": {"id": user["id"]},
                    "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
                    "ConditionExpression": "#role = :role AND " + _standing(bool(user.get("disabled"))),
                    "ExpressionAttributeNames": {**names, "#role": "role"},
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if other_admin:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table.name,
                        "Key": {"id": other_admin},
                        "ConditionExpression": "#role = :admin AND " + _standing(False),
                        "ExpressionAttributeNames": {"#role": "role"},
                        "ExpressionAttributeValues": {":admin": "admin", ":f": False},
                    }
                }
            )
        client = self._table.meta.client
        try:
            client.transact_write_items(TransactItems=items)
        except client.exceptions.TransactionCanceledException:
            return None
        return {**user, **changes}

    def set_password(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Replace the hash unless it changed meanwhile (a concurrent change wins once)."""
        client = self._table.meta.client
        try:
            self._table.update_item(
                Key={"id": user_id},
                UpdateExpression="SET password_hash = :new",
                ConditionExpression="password_hash = :old",
                ExpressionAttributeValues={":new": new_hash, ":old": old_hash},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _standing(disabled: bool) -> str:
    """A condition: the user's `disabled` flag is `disabled` (absent counts as false); `:f` is False."""
    return "disabled <> :f" if disabled else "(attribute_not_exists(disabled) OR disabled = :f)"


class Sessions:
    """One item per session (a login and every token refreshed from it, its refresh family), by
    the tokens' `sid`; deleting it revokes every access and refresh token of the session."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, sid: str, user: dict[str, Any], expires_at: int) -> None:
        """A session without a refresh token (scripts and tests minting a token)."""
        self._table.put_item(
            Item={
                "jti": sid,
                "user_id": user["id"],
                "email": user["email"],
                "role": user["role"],
                **timeutil.ttl_fields(expires_at),
            }
        )

    def get(self, sid: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"jti": sid}, ConsistentRead=True).get("Item")
        if item and int(item["ttl"]) <= timeutil.now():
            return None  # expired but not yet removed by TTL
        return item

    def revoke(self, sid: str) -> dict[str, Any] | None:
        """Delete the session; what it held, or None when it was gone already."""
        return self._table.delete_item(Key={"jti": sid}, ReturnValues="ALL_OLD").get("Attributes")

    def of_user(self, user_id: str) -> list[str]:
        """The ids of the user's sessions (the `by_user` index: eventually consistent)."""
        pages = aws.query_pages(self._table, IndexName="by_user", KeyConditionExpression=Key("user_id").eq(user_id))
        return [item["jti"] for page in pages for item in page.get("Items", [])]


class SessionGone(Exception):
    """The session was revoked, expired, or its user disabled or changed role."""


class TokenUsed(Exception):
    """The refresh token was rotated already (possibly by a concurrent refresh)."""


def refresh_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    """Refresh tokens, stored by SHA-256 only, and the transactions that start a session and
    rotate its token. Each transaction checks the user (exists, not disabled, same role), so a
    login or a refresh racing an admin's change cannot outlive it."""

    def __init__(self, tokens: Any, sessions: Any, users: Any) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._users = users

    def get(self, token: str) -> dict[str, Any] | None:
        return self._tokens.get_item(Key={"hash": refresh_hash(token)}, ConsistentRead=True).get("Item")

    def _user_unchanged(self, user_id: str, role: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self._users.name,
                "Key": {"id": user_id},
                "ConditionExpression": "#r = :role AND (attribute_not_exists(disabled) OR disabled = :f)",
                "ExpressionAttributeNames": {"#r": "role"},
                "ExpressionAttributeValues": {":role": role, ":f": False},
            }
        }

    def _put_token(self, token: str, sid: str, user_id: str, expires_at: float) -> dict[str, Any]:
        item = {"hash": refresh_hash(token), "sid": sid, "user_id": user_id, **timeutil.ttl_fields(expires_at)}
        return {
            "Put": {"TableName": self._tokens.name, "Item": item, "ConditionExpression": "attribute_not_exists(#h)"},
        }

    def start(self, sid: str, user: dict[str, Any], token: str, expires_at: float, cap: float) -> None:
        """A new session for `user` with its first refresh token; SessionGone when the user was
        disabled or changed role since it was read."""
        session = {
            "jti": sid,
            "user_id": user["id"],
            "email": user["email"],
            "role": user["role"],
            "created_at": timeutil.iso(),
            "refresh_cap": int(cap),
            **timeutil.ttl_fields(expires_at),
        }
        put_token = self._put_token(token, sid, user["id"], expires_at)
        put_token["Put"]["ExpressionAttributeNames"] = {"#h": "hash"}
        try:
            self._transact(
                [
                    {"Put": {"TableName": self._sessions.name, "Item": session}},
                    put_token,
                    self._user_unchanged(user["id"], user["role"]),
                ]
            )
        except SessionGone:
            held = self.get(token)
            if held is None or held.get("sid") != sid:
                raise
            # this very transaction, applied already: its answer was lost and the SDK sent it again

    def rotate(self, old: str, session: dict[str, Any], new: str, expires_at: float) -> None:
        """Mark `old` used (naming its successor, `rotated_to`) and store `new` in one transaction,
        sliding the session's expiry. TokenUsed when `old` was used already by another rotation (a
        concurrent refresh won), SessionGone when the session or its user's standing changed; a
        repeat of this very rotation (its answer lost, the SDK sent it again) is done."""
        put_token = self._put_token(new, session["jti"], session["user_id"], expires_at)
        put_token["Put"]["ExpressionAttributeNames"] = {"#h": "hash"}
        reasons = self._transact(
            [
                {
                    "Update": {
                        "TableName": self._tokens.name,
                        "Key": {"hash": refresh_hash(old)},
                        "UpdateExpression": "SET used_at = :now, rotated_to = :next",
                        "ConditionExpression": "attribute_exists(#h) AND attribute_not_exists(used_at)",
                        "ExpressionAttributeNames": {"#h": "hash"},
                        "ExpressionAttributeValues": {":now": timeutil.iso_ms(), ":next": refresh_hash(new)},
                    }
                },
                put_token,
                {
                    "Update": {
                        "TableName": self._sessions.name,
                        "Key": {"jti": session["jti"]},
                        "UpdateExpression": "SET #t = :ttl, expiry_day = :day",
                        "ConditionExpression": "attribute_exists(jti)",
                        "ExpressionAttributeNames": {"#t": "ttl"},
                        "ExpressionAttributeValues": {
                            ":ttl": int(expires_at),
                            ":day": timeutil.ttl_fields(expires_at)["expiry_day"],
                        },
                    }
                },
                self._user_unchanged(session["user_id"], session["role"]),
            ],
            raise_on_failure=False,
        )
        if reasons is None:
            return
        if reasons[0] == "ConditionalCheckFailed":
            held = self.get(old)
            if held is not None and held.get("rotated_to") == refresh_hash(new):
                return  # this very rotation, applied already: its answer was lost, the SDK sent it again
            raise TokenUsed()
        raise SessionGone()

    def _transact(self, items: list[dict[str, Any]], raise_on_failure: bool = True) -> list[str] | None:
        """Run the transaction; None when it succeeded, else each item's cancellation code."""
        client = self._tokens.meta.client
        try:
            client.transact_write_items(TransactItems=items)
        except client.exceptions.TransactionCanceledException as exc:
            if raise_on_failure:
                raise SessionGone() from None
            return [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])] or ["Unknown"]
        return None


def users() -> Users:
    return Users(aws.table("users"))


def sessions() -> Sessions:
    return Sessions(aws.table("sessions"))


def refresh_tokens() -> RefreshTokens:
    return RefreshTokens(aws.table("refresh_tokens"), aws.table("sessions"), aws.table("users"))


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user.get("id") or user.get("user_id"), "email": user["email"], "role": user["role"]}
