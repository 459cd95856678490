"""`job.cancelled` to the job's rooms: admins, and the user who caused it (as `job.completed`),
with `{"job_id","queue","attempts"}`. A `JobEvent` listener that app.py subscribes; it sends
through the realtime emitters' public `emit`, so the jobs package itself never calls them.

(Its natural home is beside `realtime.emitters.on_job_event`; moving it there is left for a
session with time for a full recorded run, since the IAM module table follows the modules.)
"""

from __future__ import annotations

from chalicelib import events


def on_job_cancelled(event: events.JobEvent) -> None:
    if event.kind != "cancelled":
        return
    from chalicelib.realtime import emitters, rooms

    job = event.job
    to = [rooms.ADMIN] + ([rooms.user_room(job["user_id"])] if job.get("user_id") else [])
    emitters.emit("job.cancelled", to, {"job_id": job["id"], "queue": job["queue"], "attempts": int(job["attempts"])})
