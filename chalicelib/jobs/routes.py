"""Jobs' REST routes: a job, its retry, promote and cancel, a queue's jobs by state. The jobs'
refusals (`jobs.errors`) are the domain's, so the middleware answers them (404, 409, 503)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import catalog
from chalicelib.apidoc import ADMIN, PAGE, USERS, Op, Param

routes = Blueprint(__name__)

CAUSED = "admins, or the user who caused the job (404 for anyone else)"
DOCS = {
    "GET /api/jobs/{job_id}": Op("A job", USERS, "Job", description=CAUSED),
    "POST /api/jobs/{job_id}/retry": Op(
        "Run a failed job again",
        ADMIN,
        "JobStarted",
        202,
        errors={409: "the job has not failed", 503: "the retry could not be queued"},
    ),
    "POST /api/jobs/{job_id}/promote": Op(
        "Run a delayed job now",
        ADMIN,
        "Job",
        errors={409: "the job is not delayed", 503: "the job could not be queued"},
    ),
    "POST /api/jobs/{job_id}/cancel": Op(
        "Cancel a waiting or delayed job",
        USERS,
        "Job",
        errors={409: "the job is neither waiting nor delayed"},
        description=CAUSED,
    ),
    "GET /api/queues/{queue}/jobs": Op(
        "A queue's jobs in one state, newest change first",
        ADMIN,
        "JobPage",
        path={"queue": {"enum": catalog.job_queues()}},
        query=(
            *PAGE,
            Param(
                "state",
                {"enum": ["waiting", "delayed", "active", "completed", "failed", "cancelled"], "default": "waiting"},
                "the state",
            ),
        ),
    ),
}


@routes.route("/api/jobs/{job_id}")
def get_job(job_id: str) -> dict:
    """Admins, or the user who caused the job (404 for anyone else, so ids of other people's jobs
    are not confirmed)."""
    from chalicelib.auth import service as auth

    return _visible_job(job_id, auth.require())


def _visible_job(job_id: str, user: dict) -> dict:
    """The job, for an admin or the user who caused it; JobNotFound (404) for anyone else."""
    from chalicelib import jobs

    job = jobs.get(job_id)
    if job is None or (user["role"] != "admin" and job.get("user_id") != user["id"]):
        raise jobs.JobNotFound(job_id)
    return job


@routes.route("/api/jobs/{job_id}/retry", methods=["POST"])
def retry_job(job_id: str) -> object:
    from chalicelib import audit, http, jobs
    from chalicelib.auth import service as auth

    auth.require("admin")
    job = jobs.retry(job_id)
    audit.record("job.retry", resource=("job", job_id), details={"queue": job.get("queue"), "via": "job"})
    return http.accepted({"job_id": job["id"], **job})


@routes.route("/api/jobs/{job_id}/promote", methods=["POST"])
def promote_job(job_id: str) -> dict:
    """A delayed job runs now (admins); 409 unless delayed."""
    from chalicelib import audit, jobs
    from chalicelib.auth import service as auth

    auth.require("admin")
    job = jobs.promote(job_id)
    audit.record("job.promote", resource=("job", job_id), details={"queue": job["queue"]})
    return job


@routes.route("/api/jobs/{job_id}/cancel", methods=["POST"])
def cancel_job(job_id: str) -> dict:
    """A waiting or delayed job never runs (admins, or the user who caused it; 404 for anyone
    else, as GET does); 409 otherwise."""
    from chalicelib import audit, jobs
    from chalicelib.auth import service as auth

    _visible_job(job_id, auth.require())
    job = jobs.cancel(job_id)
    audit.record("job.cancel", resource=("job", job_id), details={"queue": job["queue"], "type": job["type"]})
    return job


@routes.route("/api/queues/{queue}/jobs")
def list_queue_jobs(queue: str) -> dict:
    """`?state=` (default waiting), newest change first."""
    from chalicelib import catalog, errors, http, jobs
    from chalicelib.auth import service as auth
    from chalicelib.jobs import records

    auth.require("admin")
    if queue not in catalog.job_queues():
        raise errors.NotFound(f"queue {queue[:64]}")
    params = http.query(routes.current_request)
    state = params.get("state") or "waiting"
    if state not in records.STATES:
        raise errors.Invalid(f"must be one of {', '.join(records.STATES)}", "state")
    return jobs.list_page(queue, state, params)
