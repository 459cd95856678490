"""Jobs' REST routes: a job, its retry, promote and cancel. The jobs' refusals (`jobs.errors`)
are the domain's, so the middleware answers them (404, 409, 503). A queue's routes
(`/api/queues/...`) are the dashboard's."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.access import route
from chalicelib.routing import ADMIN, IDEMPOTENCY_KEY, PAGE, UNTIL, USERS, Op, Param, since

routes = Blueprint(__name__)

CAUSED = "admins, or the user who caused the job (404 for anyone else)"
TEXT = {"type": "string", "maxLength": 200}
SEARCH = (
    Param("queue", {"type": "string"}, "the job queue"),
    Param("state", {"enum": ["waiting", "delayed", "active", "completed", "failed", "cancelled"]}, "the state"),
    Param("type", TEXT, "the job type"),
    Param("user_id", TEXT, "the user who caused the job"),
    Param("article_id", TEXT, "the article the job is for"),
    Param("q", TEXT, "a job id, or words of the job's error"),
    since("the first job kept; 15 days back without a filter"),
    UNTIL,
    *PAGE,
)


@route(
    routes,
    "GET /api/jobs",
    Op(
        "Search every job still kept, newest first",
        ADMIN,
        "JobPage",
        query=SEARCH,
        description="Indexed: a page may come back short with a `next_cursor` when filters match little.",
    ),
)
def search_jobs(user: dict) -> dict:
    from chalicelib import http
    from chalicelib.jobs import search, service

    return search.search(http.query(routes.current_request), service.store())


@route(routes, "GET /api/jobs/{job_id}", Op("A job", USERS, "Job", description=CAUSED))
def get_job(user: dict, job_id: str) -> dict:
    """Admins, or the user who caused the job (404 for anyone else, so ids of other people's jobs
    are not confirmed)."""
    return _visible_job(job_id, user)


@route(
    routes, "GET /api/jobs/{job_id}/logs", Op("A job's log lines, per attempt", USERS, "JobLogs", description=CAUSED)
)
def job_logs(user: dict, job_id: str) -> dict:
    """The lines its processor logged (`ctx.log`), oldest attempt first, secrets masked; and
    `attempts`: each stored attempt's start, end, outcome and error (the job page's timeline)."""
    from chalicelib.jobs import joblog, service

    _visible_job(job_id, user)
    record = service.store().get(job_id) or {}
    attempts = [{k: v for k, v in a.items() if k != "lines"} for a in joblog.attempts_of(record)]
    return {"items": joblog.lines_of(record), "attempts": attempts}


def _visible_job(job_id: str, user: dict) -> dict:
    """The job, for an admin or the user who caused it; JobNotFound (404) for anyone else."""
    from chalicelib import jobs

    job = jobs.get(job_id)
    if job is None or (user["role"] != "admin" and job.get("user_id") != user["id"]):
        raise jobs.JobNotFound(job_id)
    return job


@route(
    routes,
    "POST /api/jobs/{job_id}/retry",
    Op(
        "Run a failed job again",
        ADMIN,
        "JobStarted",
        202,
        errors={409: "the job has not failed", 503: "the retry could not be queued"},
    ),
)
def retry_job(user: dict, job_id: str) -> object:
    from chalicelib import audit, http, jobs

    job = jobs.retry(job_id)
    audit.record("job.retry", resource=("job", job_id), details={"queue": job.get("queue"), "via": "job"})
    return http.accepted({"job_id": job["id"], **job})


@route(
    routes,
    "POST /api/jobs/{job_id}/promote",
    Op(
        "Run a delayed job now",
        ADMIN,
        "Job",
        errors={409: "the job is not delayed", 503: "the job could not be queued"},
    ),
)
def promote_job(user: dict, job_id: str) -> dict:
    """A delayed job runs now (admins); 409 unless delayed."""
    from chalicelib import audit, jobs

    job = jobs.promote(job_id)
    audit.record("job.promote", resource=("job", job_id), details={"queue": job["queue"]})
    return job


@route(
    routes,
    "POST /api/jobs/{job_id}/cancel",
    Op(
        "Cancel a waiting or delayed job",
        USERS,
        "Job",
        errors={409: "the job is neither waiting nor delayed"},
        description=CAUSED,
    ),
)
def cancel_job(user: dict, job_id: str) -> dict:
    """A waiting or delayed job never runs (admins, or the user who caused it; 404 for anyone
    else, as GET does); 409 otherwise."""
    from chalicelib import audit, jobs

    _visible_job(job_id, user)
    job = jobs.cancel(job_id)
    audit.record("job.cancel", resource=("job", job_id), details={"queue": job["queue"], "type": job["type"]})
    return job


@route(
    routes,
    "POST /api/jobs/{job_id}/duplicate",
    Op(
        "Run a job again as a new job (same queue, type and payload)",
        ADMIN,
        "JobStarted",
        202,
        headers=(IDEMPOTENCY_KEY,),
        errors={409: "the job's processor refuses a re-run now", 503: "the new job could not be queued"},
        description="A repeat with the same Idempotency-Key answers the job the first call made.",
    ),
)
def duplicate_job(user: dict, job_id: str) -> object:
    from chalicelib import audit, http
    from chalicelib.jobs.duplicate import duplicate

    job, made = duplicate(job_id, key=http.idempotency_key(routes.current_request))
    if made:  # a repeat of the key was audited by its first call
        audit.record("job.duplicate", resource=("job", job["id"]), details={"queue": job["queue"], "of": job_id})
    return http.accepted({"job_id": job["id"], **job})
