"""The dashboard page and its script as the app serves them: open to anyone (the page asks for a
login itself), self-contained (nothing from another host), with a strict Content Security Policy."""

from __future__ import annotations

import re

from chalicelib.dashboard import page


def test_the_page_is_served_to_anyone_as_html_with_a_strict_policy(client):
    response = client.http.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    html = response.body.decode()
    assert '<form id="login-form">' in html
    assert '<script type="module" src="/static/dashboard.js"></script>' in html


def test_the_page_connects_only_to_the_stages_own_websocket_api(client, monkeypatch):
    from chalicelib import config

    url = "wss://abc123.execute-api.us-east-1.amazonaws.com/api"
    monkeypatch.setenv(config.WS_URL, url)
    config.reset()
    try:
        policy = client.http.get("/dashboard").headers["Content-Security-Policy"]
    finally:
        monkeypatch.delenv(config.WS_URL)
        config.reset()
    [connect] = [d.split()[1:] for d in policy.split(";") if d.split()[:1] == ["connect-src"]]
    assert connect == ["'self'", "wss://abc123.execute-api.us-east-1.amazonaws.com"]
    assert page.policy(None).count("connect-src 'self';") == 1  # no WebSocket API configured: none
    assert "evil" not in page.policy("wss://a.example; connect-src evil")


def test_the_script_is_served_as_a_javascript_module(client):
    response = client.http.get("/static/dashboard.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert 'import("/static/realtime.js")' in response.body.decode()


def test_nothing_is_loaded_from_another_host():
    for name in ("dashboard.html", "dashboard.js"):
        text = (page.STATIC / name).read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name
        assert not re.search(r"\bhttps?://", text), name
        assert "innerHTML" not in text, name  # every value goes through textContent


def test_the_script_calls_only_routes_the_app_has(app):
    script = (page.STATIC / "dashboard.js").read_text()
    paths = {re.sub(r"\$\{[^}]+\}", "{x}", p.split("?")[0]) for p in re.findall(r"[\"`](/api/[^\"`]*)[\"`]", script)}
    routes = {re.sub(r"\{[^}]+\}", "{x}", r) for r in app.routes}
    routes |= {"/api/queues/{x}/{x}"} if {"/api/queues/{x}/pause", "/api/queues/{x}/resume"} <= routes else set()
    # the jobs API's routes (GET /api/jobs/{id}, its retry, a queue's jobs) land with that capability
    assert paths and paths <= routes | {"/api/queues/{x}/jobs", "/api/jobs/{x}", "/api/jobs/{x}/retry"}
