"""The app the real-time e2e stacks serve: Inkwell's own, plus one probe route that publishes a
lifecycle event (as a processor would), so tests can drive the emitters in the stack's process.
Imported through INKWELL_LOCAL_APP, never by app.py."""

from __future__ import annotations

from typing import Any

from app import app
from chalicelib import events


@app.route("/e2e/realtime/publish", methods=["POST"])
def e2e_realtime_publish() -> dict[str, Any]:
    body = app.current_request.json_body
    kind = body["kind"]
    if kind == "article_status":
        events.publish(
            events.ArticleStatusChanged(body["article_id"], body["status"], body["author_id"], body.get("job_id"))
        )
    elif kind == "alert":
        events.publish(events.Alert(body["level"], body["message"], body.get("details") or {}))
    elif kind == "job":
        events.publish(events.JobEvent(body["job_kind"], body["job"], body.get("error")))
    else:
        return {"published": False}
    return {"published": True}
