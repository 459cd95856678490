"""How Inkwell is put together: importing a module registers nothing, app.py wires everything in
one place on Chalice's public seams, and importing it stays cheap (cold starts)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]


def _run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_importing_every_chalicelib_module_subscribes_no_listener():
    code = (
        "import importlib, pkgutil, chalicelib\n"
        "for m in pkgutil.walk_packages(chalicelib.__path__, 'chalicelib.'):\n"
        "    importlib.import_module(m.name)\n"
        "from chalicelib import events\n"
        "print(sum(len(events.listeners(t)) for t in events.EVENT_TYPES))\n"
    )
    assert _run(code) == ["0"]


def test_app_wires_every_listener_in_one_place():
    code = (
        "import app\n"
        "from chalicelib import events\n"
        "for t in events.EVENT_TYPES:\n"
        "    print(t.__name__, sorted(f'{l.__module__}.{l.__name__}' for l in events.listeners(t)))\n"
    )
    wired = dict(line.split(" ", 1) for line in _run(code))
    assert wired["JobEvent"] == str(
        sorted(
            [
                "chalicelib.audit.listeners.on_job_event",
                "chalicelib.realtime.emitters.on_job_event",
                "chalicelib.schedules.service.on_job_event",
                "chalicelib.mail.alerts.alert_on_failure",
                "chalicelib.observe.metrics.on_job_event",
                "chalicelib.jobs.timeline.on_job_event",
            ]
        )
    )
    assert wired["ReportStored"] == "['chalicelib.realtime.emitters.on_report_stored']"
    assert all(listeners != "[]" for listeners in wired.values()), wired  # every event type has a listener


def test_the_deployed_workers_hold_paused_queues_and_guard_scheduled_jobs():
    import app
    from chalicelib.jobs import pause
    from chalicelib.schedules import service as schedules

    worker = app.job_worker("articles")
    assert worker.holds == (pause.is_paused,) and worker.guards == (schedules.exclusive,)


def test_every_event_handler_is_deployed_from_app_py():
    """Chalice deploys a blueprint's event handler with the blueprint's module as the entry point,
    which skips app.py's middleware and wiring (aws/chalice#1566): event handlers live in app.py."""
    import app

    handlers = [s.handler_string for s in app.app.event_sources]
    handlers += [h.handler_string for h in app.app.websocket_handlers.values()]
    assert len(handlers) > 10
    assert [h for h in handlers if not re.fullmatch(r"app\.\w+", h)] == []
    assert all(getattr(app, h.split(".")[1]) is app.app.handler_map[h.split(".")[1]] for h in handlers)


def test_no_private_chalice_attribute_is_used():
    private = re.compile(r"\b(?:app|routes|blueprint|Chalice|Blueprint|super\(\))\._[a-z]\w*|\(Chalice\)")
    found = [f"{p.relative_to(ROOT)}: {m.group()}" for p in SOURCES for m in private.finditer(p.read_text())]
    assert found == []


# What importing app.py must not load (`make bench`, cold start): pydantic's model machinery (the
# request models, the job messages), boto3, the REST edge, and the modules only a handler runs.
HEAVY_AT_IMPORT = [
    "boto3",
    "pydantic.main",
    "pydantic.fields",
    "pydantic._internal._generate_schema",
    "chalicelib.http",
    "chalicelib.auth.service",
    "chalicelib.content.articles",
    "chalicelib.content.settings",
    "chalicelib.dashboard.service",
    "chalicelib.audit.api",
    "chalicelib.jobs.service",
    "chalicelib.jobs.queues",
    "chalicelib.jobs.pause",
    "chalicelib.content.generation",
    "chalicelib.content.generation_job",
    "chalicelib.content.actions",
    "chalicelib.content.generator",
    "chalicelib.content.report_jobs",
    "chalicelib.content.cleanup",
    "chalicelib.mail.jobs",
    "chalicelib.auth.sweeps",
    "chalicelib.audit.jobs",
    "chalicelib.audit.seal_jobs",
    "chalicelib.jobs.sweep",
    "chalicelib.audit.chain",
    "chalicelib.audit.counts",
    "chalicelib.audit.store",
    "chalicelib.realtime.handlers",
]


def test_importing_the_app_leaves_heavy_modules_unloaded():
    code = f"import sys, app; print([m for m in {HEAVY_AT_IMPORT!r} if m in sys.modules])"
    assert _run(code) == ["[]"]


def test_the_operations_load_on_first_use():
    code = (
        "import sys, app\n"
        "from chalicelib import jobs\n"
        "print('chalicelib.jobs.service' in sys.modules, jobs.enqueue.__module__)\n"
    )
    assert _run(code) == ["False chalicelib.jobs.service"]


def test_the_processors_are_declared_by_their_capabilities_and_cover_the_catalogue():
    """Each capability declares the processors it runs (PROCESSORS); app.py's table holds them
    all, and every job type the catalogue accepts has exactly one processor."""
    import app
    from chalicelib import catalog

    declared = sorted((proc.queue, proc.type) for proc in app.declared_processors())
    assert declared == sorted(app.processors())  # no type declared twice
    assert declared == sorted((q, t) for q, spec in catalog.QUEUES.items() for t in spec.job_types)
    assert not any(proc.run.__module__.startswith("chalicelib.jobs.") for proc in app.declared_processors())


def test_the_engine_runs_the_processors_app_py_hands_it():
    import app
    from chalicelib.jobs import processor

    assert processor.find("articles", "generate") is app.processors()[("articles", "generate")]
    assert app.job_worker("articles-high").find is app.find_processor
