"""A bare Chalice app for the tests of the stack's own life cycle (start, signals, parent death),
which do not need Inkwell's handlers and start faster without them."""

from __future__ import annotations

from chalice import Chalice

app = Chalice(app_name="inkwell")


@app.route("/api/health")
def health() -> dict:
    return {"status": "ok"}
