"""Why a request is refused, in the domain's words. Domain code raises these; the edges map them:
the REST middleware (`runtime`, through `http.error_response`) to a status and the contract's
`{"Code", "Message", "Errors"?}` body, the WebSocket handlers to an error frame or a refused
connect.

They derive from Chalice's public `ChaliceUnhandledError`, the one kind of exception Chalice lets
through a view to the middleware (it answers any other itself, with a bare 500).
"""

from __future__ import annotations

from chalice import ChaliceUnhandledError


class Refused(ChaliceUnhandledError):
    """A request that cannot be served as asked. `field` names the input at fault, if one is."""

    def __init__(self, message: str, field: str | None = None, *, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = str(self)
        self.field = field
        # Every input at fault, as `[{"field", "message"}]` (a body with several bad fields).
        self.details = details if details is not None else ([{"field": field, "message": message}] if field else None)


class Invalid(Refused):
    """The input is malformed or out of range."""


class Unauthenticated(Refused):
    """No valid credentials."""


class Forbidden(Refused):
    """Valid credentials, not allowed to do this."""


class NotFound(Refused):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Conflict(Refused):
    """Not allowed in the resource's current state."""


class TooLarge(Refused):
    """The input is larger than allowed."""


class Throttled(Refused):
    """Too many attempts; allowed again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(Refused):
    """A dependency refused or failed (a queue, DynamoDB still throttling after the SDK's
    retries, ...); trying again after `retry_after` seconds may work."""

    RETRY_AFTER = 2  # seconds: the SDK already waited through its own retries

    def __init__(self, message: str, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(message)
        self.retry_after = retry_after
