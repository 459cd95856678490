"""The queue dashboard on the local stack: pause/resume through the event source mapping, and
the page itself in headless Chromium (Debian's `chromium`, driven by Playwright for Python):
sign in, see the stats, make a job fail, click retry, watch it complete live over the WebSocket;
two tabs of one browser refreshing their session at once both stay signed in.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack, eventually, start_stack, stop_stack

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# how long the two-tab test waits for a page: a reload there can wait out a refresh its page left
# in flight (realtime.js REFRESH_PENDING_MS), on a machine that may be running much else
LOADED_MACHINE_MS = 30000
SCREENSHOT = Path(os.environ.get("INKWELL_DASHBOARD_SCREENSHOT", "/tmp/inkwell-dashboard.png"))


def job(stack: LocalStack, token: str, job_id: str) -> dict[str, Any]:
    status, body, _ = stack.request("GET", f"/api/jobs/{job_id}", token=token)
    assert status == 200, body
    return body


def record(stack: LocalStack, job_id: str) -> dict[str, Any]:
    """The job's record, read from the stack's DynamoDB."""
    item = stack.aws("dynamodb").get_item(
        TableName=stack.resource_name("jobs"), Key={"id": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    return {"state": item["state"]["S"], "attempts": int(item["attempts"]["N"])}


def failed_article_job(stack: LocalStack, token: str) -> str:
    """An article generation the fake generator refuses once with a 400 (a permanent failure)."""
    status, article, _ = stack.request(
        "POST", "/api/articles", {"title": f"Dashboard {uuid.uuid4().hex[:6]}", "topic": "queues"}, token=token
    )
    assert status == 201, article
    status, body, _ = stack.control(
        "POST", "/generator/faults", {"status": 400, "times": 1, "article_id": article["id"]}
    )
    assert status in (200, 204), body
    status, started, _ = stack.request("POST", f"/api/articles/{article['id']}/generate", token=token)
    assert status == 202, started
    eventually(lambda: job(stack, token, started["job_id"])["state"] == "failed", timeout=20)
    # the failure hook rolls the article back just after the job is marked failed
    eventually(lambda: stack.request("GET", f"/api/articles/{article['id']}", token=token)[1]["status"] == "DRAFT")
    return started["job_id"]


@pytest.fixture
def served(stack: LocalStack) -> LocalStack:
    """Skip (saying why) until the jobs API and the browser real-time client are both served."""
    token = stack.login()
    if stack.request("GET", "/api/queues/articles/jobs?state=failed", token=token)[0] != 200:
        pytest.skip("the jobs API (GET /api/queues/{queue}/jobs) is not served yet")
    if stack.request("GET", "/static/realtime.js")[0] != 200:
        pytest.skip("the browser real-time client (/static/realtime.js) is not served yet")
    return stack


# --- the API on the stack ------------------------------------------------------------------------


def test_pausing_a_queue_holds_its_jobs_and_resuming_runs_them(stack: LocalStack) -> None:
    token = stack.login()
    status, body, _ = stack.request("POST", "/api/queues/cleanup/pause", token=token)
    assert (status, body) == (200, {"queue": "cleanup", "paused": True})
    try:
        # Lambda (and the stack's poller) notices a disabled mapping within a second or so; a
        # batch received meanwhile would be held by the worker and put back for 30 s.
        time.sleep(2)
        status, run, _ = stack.request("POST", "/api/schedules/session-cleanup/run", token=token)
        assert status == 202, run
        time.sleep(2.5)
        assert record(stack, run["job_id"]) == {"state": "waiting", "attempts": 0}
        stats = stack.request("GET", "/api/queues/stats", token=token)[1]["queues"]["cleanup"]
        assert stats["paused"] is True and stats["waiting"] >= 1
    finally:
        status, body, _ = stack.request("POST", "/api/queues/cleanup/resume", token=token)
    assert (status, body) == (200, {"queue": "cleanup", "paused": False})
    eventually(lambda: record(stack, run["job_id"])["attempts"] >= 1, timeout=15)


def test_retry_all_on_the_stack_empties_the_dead_letter_queue(served: LocalStack) -> None:
    stack = served
    token = stack.login()
    job_id = failed_article_job(stack, token)
    status, body, _ = stack.request("POST", "/api/queues/articles/retry-failed", token=token)
    assert status == 202 and body["requeued"] >= 1, body
    eventually(lambda: job(stack, token, job_id)["state"] == "completed", timeout=15)
    stats = stack.request("GET", "/api/queues/stats", token=token)[1]["queues"]["articles"]
    assert stats["dead_letter"] == 0


# --- the page in Chromium ------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        reason = "Chromium is not installed (apt-get install -y chromium); the dashboard browser test is skipped"
        print(reason)
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        print(f"Playwright is not installed ({exc}); the dashboard browser test is skipped")
        pytest.skip(f"Playwright is not installed: {exc}")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def test_the_dashboard_page_signs_in_shows_stats_and_a_retried_job_completes_live(
    served: LocalStack, browser: Any
) -> None:
    stack = served
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    outside: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")) else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))

    # GIVEN the page, which asks for a login
    page.goto(f"{stack.http_url}/dashboard")
    page.wait_for_selector("#login-form")
    page.fill("#email", stack.admin_email)
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:not(:empty)")
    page.fill("#password", stack.admin_password)
    page.click("button[type=submit]")

    # THEN the four queues' stats and health show, and the live connection is up
    for queue in ("articles", "analytics", "emails", "cleanup"):
        page.wait_for_selector(f'.card[data-queue="{queue}"] [data-stat="waiting"] b')
    page.wait_for_selector("#live.on", timeout=10000)
    assert page.text_content('.card[data-queue="articles"] h3') is not None

    # WHEN a job fails
    token = stack.login()
    job_id = failed_article_job(stack, token)
    page.click('[data-queue-tab="articles"]')
    page.click('[data-state-tab="failed"]')
    row = f'tr[data-id="{job_id}"]'
    page.wait_for_selector(f"{row} .state.failed")
    dead_letters = page.locator('.card[data-queue="articles"] [data-stat="dead_letter"] b')
    expect(dead_letters).not_to_have_text("0", timeout=20000)
    page.click(row)  # its detail
    page.wait_for_selector(f'#detail .mono:text("{job_id}")')

    # AND the admin clicks retry on it
    page.click(f'{row} [data-action="retry"]')

    # THEN the row turns completed without a reload (a job.completed event over the WebSocket)
    page.wait_for_selector(f"{row} .state.completed", timeout=15000)
    page.wait_for_selector("#feed li .kind.good")
    assert job(stack, token, job_id)["state"] == "completed"
    expect(dead_letters).to_have_text("0", timeout=20000)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert outside == [], f"the page reached other hosts: {outside}"
    assert errors == [], errors


def test_the_dashboard_page_finds_a_failed_job_by_its_error_shows_its_page_and_retries_in_bulk(
    served: LocalStack, browser: Any
) -> None:
    stack = served
    token = stack.login()
    # GIVEN two article generations the generator refused (a permanent failure each)
    failed = [failed_article_job(stack, token) for _ in range(2)]

    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())  # the bulk action's confirmation
    page.goto(f"{stack.http_url}/dashboard")
    page.fill("#email", stack.admin_email)
    page.fill("#password", stack.admin_password)
    page.click("button[type=submit]")
    page.wait_for_selector("#live.on", timeout=10000)

    # WHEN the admin searches for words of the error
    page.fill("#search-q", "webhook refused")
    page.select_option("#search-state", "failed")
    page.click('[data-action="search"]')
    # THEN the failed jobs are found
    for job_id in failed:
        page.wait_for_selector(f'tr[data-id="{job_id}"] .state.failed', timeout=10000)

    # WHEN one is opened THEN its page shows its attempt (start, end, error) and its log lines
    page.click(f'tr[data-id="{failed[0]}"]')
    page.wait_for_selector(f'#detail .mono:text("{failed[0]}")')
    attempt = page.locator('#timeline li[data-attempt="1.1"]')
    expect_text = attempt.text_content(timeout=10000) or ""
    assert "failed" in expect_text and "webhook refused" in expect_text, expect_text
    page.wait_for_selector('#logs tr:has-text("calling the generator")')
    page.wait_for_selector('#logs tr:has-text("rolled back to DRAFT")')
    assert page.locator("#detail [data-part=payload]").text_content().count("article_id") == 1
    assert page.evaluate("() => location.hash") == f"#job={failed[0]}"

    # WHEN the admin retries every failed article job from the page (confirmed)
    page.click('[data-queue-tab="articles"]')
    page.click('[data-state-tab="failed"]')
    page.select_option("#bulk-action", "retry")
    page.click('[data-action="bulk"]')
    # THEN the failed jobs are requeued, and run to completion
    page.wait_for_selector('#feed li:has-text("articles: retry")', timeout=15000)
    for job_id in failed:
        eventually(lambda job_id=job_id: job(stack, token, job_id)["state"] == "completed", timeout=30)
    assert errors == [], errors


def test_the_dashboard_page_charts_the_last_hour_lists_schedules_and_runs_one(served: LocalStack, browser: Any) -> None:
    stack = served
    token = stack.login()
    # GIVEN a job that ran in the last hour (a schedule's cleanup job)
    status, run, _ = stack.request("POST", "/api/schedules/session-cleanup/run", token=token)
    assert status == 202, run
    eventually(lambda: job(stack, token, run["job_id"])["state"] == "completed", timeout=20)
    eventually(lambda: stack.request("GET", "/api/queues/cleanup/metrics", token=token)[1]["points"] != [])

    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    outside: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")) else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.http_url}/dashboard")
    page.fill("#email", stack.admin_email)
    page.fill("#password", stack.admin_password)
    page.click("button[type=submit]")

    # THEN the cleanup queue's chart has a bar for that minute, and a p95 line
    chart = '.card[data-chart-queue="cleanup"]'
    page.wait_for_selector(f'{chart} svg[data-chart="throughput"] rect.completed', timeout=10000)
    page.wait_for_selector(f'{chart} svg[data-chart="p95"] circle.p95dot')
    assert "completed" in (page.text_content(f"{chart} .legend") or "")
    # AND every schedule is listed with its next run
    for name in ("daily-analytics", "session-cleanup", "audit-digest"):
        page.wait_for_selector(f'#schedules tr[data-schedule="{name}"] [data-cell="next"] span')
    page.wait_for_selector('#schedules tr[data-schedule="session-cleanup"] [data-cell="last"] span')
    # AND the activity feed names users by email
    page.wait_for_selector(f'#feed li:has-text("{stack.admin_email}")')

    # WHEN the admin runs a schedule now
    row = '#schedules tr[data-schedule="login-attempts-cleanup"]'
    page.click(f'{row} [data-action="run"]')
    page.wait_for_selector('#feed li:has-text("login-attempts-cleanup: job")')
    # THEN its last run shows once the list reloads
    page.wait_for_selector(f'{row} [data-cell="last"] span', timeout=10000)
    page.screenshot(path=str(SCREENSHOT.with_name("inkwell-dashboard-charts.png")), full_page=True)
    assert outside == [], f"the page reached other hosts: {outside}"
    assert errors == [], errors


def test_the_dashboard_page_lists_an_alert_raised_before_it_opened_once(served: LocalStack, browser: Any) -> None:
    stack = served
    # GIVEN a system alert raised before the page opens (an email locked out by 5 failed logins)
    email = f"locked-{uuid.uuid4().hex[:10]}@example.com"
    for _ in range(5):
        status, body, _ = stack.request("POST", "/api/auth/login", {"email": email, "password": "wrong password"})
        assert status == 401, body

    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    outside: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")) else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.http_url}/dashboard")
    page.fill("#email", stack.admin_email)
    page.fill("#password", stack.admin_password)
    page.click("button[type=submit]")

    # THEN, once connected, the alert is listed (from the admin room's replay, not heard live)
    page.wait_for_selector("#live.on", timeout=10000)
    alert = f'#alerts li:has-text("email={email}")'
    page.wait_for_selector(alert, timeout=10000)
    assert page.locator(alert).count() == 1
    assert page.is_hidden("#alerts-empty")

    # WHEN another alert is raised while the page is open
    other = f"locked-{uuid.uuid4().hex[:10]}@example.com"
    for _ in range(5):
        stack.request("POST", "/api/auth/login", {"email": other, "password": "wrong password"})
    # THEN it is heard live, listed above the earlier one, and neither is listed twice
    page.wait_for_selector(f'#alerts li:has-text("email={other}")', timeout=10000)
    texts = page.locator("#alerts li").all_text_contents()
    newer = next(i for i, t in enumerate(texts) if f"email={other}" in t)
    older = next(i for i, t in enumerate(texts) if f"email={email}" in t)
    assert newer < older
    seqs = page.locator("#alerts li").evaluate_all("(items) => items.map((li) => li.dataset.seq)")
    assert len(seqs) == len(set(seqs))

    # WHEN the page is reloaded (the token stays in the tab) THEN both are listed again, once each
    page.reload()
    page.wait_for_selector(f'#alerts li:has-text("email={other}")', timeout=10000)
    assert page.locator(alert).count() == 1
    assert page.locator("#alerts li").evaluate_all("(items) => items.map((li) => li.dataset.seq)") == seqs
    assert outside == [], f"the page reached other hosts: {outside}"
    assert errors == [], errors


def test_a_reload_keeps_the_session_and_no_script_can_read_a_token(served: LocalStack, browser: Any) -> None:
    stack = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.http_url}/dashboard")
    page.fill("#email", stack.admin_email)
    page.fill("#password", stack.admin_password)
    page.click("button[type=submit]")
    page.wait_for_selector("#live.on", timeout=10000)

    # WHEN the page is reloaded THEN it shows the dashboard again without a login, live
    page.reload()
    page.wait_for_selector('.card[data-queue="articles"] [data-stat="waiting"] b', timeout=10000)
    page.wait_for_selector("#live.on", timeout=10000)
    assert page.is_hidden("#login-view")

    # AND no token is where a script could read it
    readable = page.evaluate(
        "() => ({cookie: document.cookie, session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage)})"
    )
    assert readable == {"cookie": "", "session": "{}", "local": "{}"}
    [cookie] = [c for c in page.context.cookies() if c["name"] == "__Host-inkwell_refresh"]
    assert (
        cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    )  # __Host-

    # WHEN the admin signs out THEN a reload asks for a login again
    page.click("#logout")
    page.wait_for_selector("#login-form")
    eventually(lambda: not [c for c in page.context.cookies() if c["name"] == "__Host-inkwell_refresh"], timeout=5)
    page.reload()
    page.wait_for_selector("#login-view:not([hidden])", timeout=10000)
    assert errors == [], errors


def refresh_spans(context: Any, tab: Any, spans: dict[str, list[float]]) -> None:
    """Record each refresh of `tab` as [sent, answered] in seconds of the browser's monotonic clock
    (DevTools' Network timestamps, one clock for every tab); [sent] while unanswered, and for good
    when its page went away first. (Playwright's `request.timing` cannot order two requests: its
    `responseEnd` counts from when the request was issued, its `startTime` from when the network
    stack started it, a gap that grows with the machine's load.)"""
    session = context.new_cdp_session(tab)
    session.send("Network.enable")

    def sent(event: dict[str, Any]) -> None:
        if event["request"]["url"].endswith("/api/auth/refresh"):
            spans[event["requestId"]] = [event["timestamp"]]

    def ended(event: dict[str, Any]) -> None:
        if event["requestId"] in spans:
            spans[event["requestId"]].append(event["timestamp"])

    session.on("Network.requestWillBeSent", sent)
    session.on("Network.loadingFinished", ended)
    session.on("Network.loadingFailed", ended)


@pytest.fixture
def due_each_second(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own whose access tokens last 61 s: a page refreshes a minute before its token
    expires, so each tab's token is due again a second after each refresh."""
    process, handle = start_stack(tmp_path, INKWELL_JWT_TTL_SECONDS="61")
    try:
        yield handle
    finally:
        stop_stack(process)


def test_two_tabs_refreshing_at_once_both_stay_signed_in_and_no_reuse_is_seen(
    due_each_second: LocalStack, browser: Any
) -> None:
    stack = due_each_second
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tabs = [context.new_page(), context.new_page()]
    errors: list[str] = []
    refreshes: list[Any] = []  # the tabs' POST /api/auth/refresh requests, once answered or failed
    spans: dict[str, list[float]] = {}  # the same, on the browser's one clock (see `refresh_spans`)
    for tab in tabs:
        tab.on("pageerror", lambda e: errors.append(str(e)))
        refresh_spans(context, tab, spans)
    context.on("requestfinished", lambda r: refreshes.append(r) if r.url.endswith("/api/auth/refresh") else None)
    context.on("requestfailed", lambda r: refreshes.append(r) if r.url.endswith("/api/auth/refresh") else None)

    # GIVEN one tab signed in and a second tab of the browser on the dashboard (the cookie's session)
    tabs[0].goto(f"{stack.http_url}/dashboard")
    tabs[0].fill("#email", stack.admin_email)
    tabs[0].fill("#password", stack.admin_password)
    tabs[0].click("button[type=submit]")
    tabs[0].wait_for_selector("#live.on", timeout=LOADED_MACHINE_MS)
    refreshes.clear()  # the signed-out page's refresh on load, before the login (no cookie: 401)
    spans.clear()
    logged = len(stack.log.read_text(errors="replace").splitlines())
    tabs[1].goto(f"{stack.http_url}/dashboard")
    tabs[1].wait_for_selector("#live.on", timeout=LOADED_MACHINE_MS)

    # WHEN both reload at the same moment, three times (each then refreshes through the one cookie
    # at once), and then their new tokens fall due together each second
    for _ in range(3):
        at = tabs[0].evaluate("() => Date.now() + 300")
        for tab in tabs:
            tab.evaluate("(at) => { setTimeout(() => location.reload(), at - Date.now()); }", at)
        tabs[0].wait_for_timeout(400)
        for number, tab in enumerate(tabs):
            tab.wait_for_selector("#live.on, #login-view:not([hidden])", timeout=LOADED_MACHINE_MS)
            assert tab.is_hidden("#login-view"), f"tab {number} was signed out"
    tabs[0].wait_for_timeout(3000)

    # THEN both are still signed in and live
    for number, tab in enumerate(tabs):
        assert tab.is_hidden("#login-view"), f"tab {number} was signed out"
        tab.wait_for_selector("#live.on", timeout=LOADED_MACHINE_MS)
    # AND the server answered every refresh with a new token (a refresh whose page reloaded while it
    # was in flight too: the page no longer hears the answer, net::ERR_ABORTED, but the cookie is kept)
    served = re.findall(r" POST /api/auth/refresh (\d{3}) ", "\n".join(stack.log.read_text().splitlines()[logged:]))
    assert len(served) >= 10 and set(served) == {"200"}, served
    answered = [(r.response().status if r.response() else r.failure) for r in refreshes]
    assert set(answered) <= {200, "net::ERR_ABORTED"}, answered
    # AND one after the other (each with the cookie the last one set)
    ordered = sorted(spans.values())
    overlaps = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if len(a) == 2 and b[0] < a[1]]
    assert not overlaps, overlaps
    # AND the server saw no reuse
    status, audit, _ = stack.request("GET", "/api/audit?action=security.refresh_reuse", token=stack.login())
    assert status == 200, audit
    assert audit["items"] == []
    assert errors == [], errors
    context.close()
