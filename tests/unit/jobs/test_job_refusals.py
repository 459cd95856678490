"""The jobs' refusals are the domain's refusals (chalicelib.errors): the middleware answers them
with their status, so no route maps them by hand."""

from __future__ import annotations

import json

import pytest

from chalicelib import http
from chalicelib.jobs import errors


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (errors.JobNotFound("0" * 32), 404, "NotFoundError"),
        (errors.JobStateRefused("job x is active; only a delayed job can be promoted"), 409, "ConflictError"),
        (errors.RetryRefused("job x is completed; only a failed job can be retried"), 409, "ConflictError"),
        (errors.EnqueueError("the job could not be queued; try again"), 503, "ServiceUnavailableError"),
    ],
)
def test_a_job_refusal_answers_its_status(refusal, status, code):
    response = http.error_response(refusal)
    assert (response.status_code, response.body["Code"]) == (status, code)
    assert json.dumps(response.body)  # the contract's shape, as the middleware sends it


def test_a_missing_job_is_still_a_lookup_error_and_names_the_job():
    missing = errors.JobNotFound("f" * 100)
    assert isinstance(missing, LookupError)
    assert str(missing) == f"job {'f' * 64} not found"  # an id this long is no job's: not echoed whole
