"""The Python client's job calls (clients/python: JobsClient) against the app's routes."""

from __future__ import annotations

import json

import pytest
from inkwell_realtime import JobsApiError, JobsClient

from chalicelib.jobs import PermanentError, enqueue


@pytest.fixture
def jobs_client(api):
    def send(method, path, body, token):
        response = api.request(method, path, body, token=token)
        return response.status_code, json.loads(response.body or b"null")

    return JobsClient("http://app", lambda: api.token("admin"), send=send)


def test_the_python_client_searches_reads_logs_duplicates_and_acts_in_bulk(api, poller, register, jobs_client):
    def fail(job, ctx):
        ctx.log("warning", "about to fail")
        raise PermanentError("quota exceeded for mailbox")

    register("emails", "send", fail)
    made = [enqueue("emails", "send", {"n": i})["id"] for i in range(3)]
    poller.drain("emails")
    found = list(jobs_client.search(q="quota exceeded", limit=2))
    assert sorted(job["id"] for job in found) == sorted(made)
    logs = jobs_client.logs(made[0])
    assert [line["message"] for line in logs["items"]] == ["about to fail"]
    assert logs["attempts"][0]["outcome"] == "failed"
    copy = jobs_client.duplicate(made[0])
    assert copy["id"] not in made and copy["payload"] == {"n": 0}
    total = jobs_client.bulk("emails", "retry")
    assert (total["matched"], total["done"], total["more"]) == (3, 3, False)
    with pytest.raises(JobsApiError) as refused:
        jobs_client.bulk("emails", "promote", state="failed")
    assert refused.value.status == 400 and "state" in str(refused.value)
