"""The body of `PUT /api/schedules/{name}` (loaded by that route and the API description only)."""

from __future__ import annotations

from pydantic import Field

from chalicelib import http


class ScheduleChange(http.Body):
    """Any of these; what is left out stays as it is."""

    expression: str | None = Field(default=None, min_length=1, max_length=256)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    enabled: bool | None = Field(default=None, strict=True)
