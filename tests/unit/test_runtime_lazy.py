"""`runtime.lazy`: app.py's handler-only modules load on first use, not at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chalicelib import runtime

ROOT = Path(__file__).resolve().parents[2]


def test_a_lazy_module_loads_on_first_attribute_read(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colorsys = runtime.lazy("colorsys")
    assert "colorsys" not in sys.modules
    assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


def test_an_already_imported_module_is_returned_itself():
    assert runtime.lazy("json") is sys.modules["json"]


def test_reads_follow_the_real_module_so_patches_apply(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colorsys = runtime.lazy("colorsys")
    colorsys.ONE_THIRD  # noqa: B018  (loads it)
    monkeypatch.setattr(sys.modules["colorsys"], "ONE_THIRD", 0.5)
    assert colorsys.ONE_THIRD == 0.5


def test_importing_the_app_leaves_handler_only_modules_unloaded():
    handler_only = [
        "chalicelib.content.articles",
        "chalicelib.content.settings",
        "chalicelib.dashboard",
        "chalicelib.audit.api",
    ]
    code = f"import sys, app; print([m for m in {handler_only!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# What app.py must not load at import (`make bench`, cold start): pydantic's model machinery (the
# request models, the job messages), the REST edge, and the jobs' and the audit trail's modules
# that only a handler runs. Registrations (routes, queues, schedules, event listeners, the
# processors' guard and the worker's holds) stay eager; these load on first use.
HEAVY_AT_IMPORT = [
    "pydantic.main",
    "pydantic.fields",
    "pydantic._internal._generate_schema",
    "chalicelib.http",
    "chalicelib.jobs.service",
    "chalicelib.jobs.queues",
    "chalicelib.jobs.processors.articles",
    "chalicelib.jobs.processors.analytics",
    "chalicelib.jobs.processors.cleanup",
    "chalicelib.jobs.processors.emails",
    "chalicelib.jobs.processors.audit",
    "chalicelib.audit.digest",
    "chalicelib.audit.store",
]


def test_importing_the_app_leaves_heavy_modules_unloaded():
    code = f"import sys, app; print([m for m in {HEAVY_AT_IMPORT!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_registrations_are_made_at_import():
    """What must be known without running a handler still is: the listeners are subscribed, the
    schedules' guard and the dashboard's hold are registered, and `jobs.enqueue` is reachable."""
    code = (
        "import sys, app\n"
        "from chalicelib import events, jobs\n"
        "from chalicelib.jobs import processors, worker\n"
        "from chalicelib.jobs.processors import registry\n"
        "from chalicelib.schedules import service\n"
        "names = lambda kind: sorted(f'{l.__module__}.{l.__name__}' for l in events._listeners[kind])\n"
        "print(names(events.JobEvent))\n"
        "print(service.exclusive in registry._guards, app._queue_paused in worker._holds)\n"
        "print('chalicelib.jobs.service' in sys.modules, jobs.enqueue.__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        str(
            [
                "chalicelib.audit.listeners.on_job_event",
                "chalicelib.realtime.emitters.on_job_event",
                "chalicelib.schedules.service.on_job_event",
            ]
        ),
        "True True",
        "False chalicelib.jobs.service",
    ]
