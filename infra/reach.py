"""Which of our modules each Lambda function can run, from the app's declarations (never app.py's text).

A function's roots are its handler's module (a blueprint's route, a schedule's handler), what runs
in every function (app.py's cold start, the middleware and its hooks), and, for a handler app.py defines itself
(an SQS or WebSocket handler, a route of its own), the modules app.py's `RUNS` table says it calls.
A job queue's consumer runs that queue's processors (app.py's `declared_processors()`: their
runs and hooks); any other function that calls a job operation (retry, cancel, redrive: the REST
API) runs every processor's hooks, one that only enqueues (a schedule) none. A chalicelib module brings every module it imports, anywhere in it (module
level or inside a function; `if TYPE_CHECKING:` blocks excepted), and a package only when it is
imported as a name (`from chalicelib import jobs`). When a reached module constructs an event of
app.py's `LISTENERS`, that event's listeners are reached too. `infra.iam` turns the reached modules
into the function's policy with the grants the suite recorded per module (`infra/iam_modules.json`).
"""

from __future__ import annotations

import ast
import functools
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "chalicelib"
REST_FUNCTION = "api_handler"  # Chalice's resource name of the REST API's function
# Chalice's resource names of the WebSocket functions, by route
WEBSOCKET_FUNCTIONS = {
    "$connect": "websocket_connect",
    "$default": "websocket_message",
    "$disconnect": "websocket_disconnect",
}


@dataclass(frozen=True)
class Function:
    name: str  # Chalice's resource name (`jobs_articles`, `api_handler`)
    modules: frozenset[str]  # every module of ours it can run
    queue: str | None = None  # the SQS queue that triggers it (its logical name)


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If) and isinstance(test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(test)
    )


def _nodes(tree: ast.AST) -> Iterable[ast.AST]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node) if not _type_checking(child))


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if _ours(alias.name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _ours(node.module):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_file(sub) else node.module)
    return found


@functools.cache
def imports(module: str) -> frozenset[str]:
    """The modules of ours `module` imports."""
    path = module_file(module)
    return frozenset(_imported(ast.parse(path.read_text()))) if path else frozenset()


def closure(modules: Iterable[str]) -> set[str]:
    """`modules` and every module of ours they import, transitively."""
    seen: set[str] = set()
    todo = [m for m in modules if _ours(m)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imports(module) - seen)
    return seen


@functools.cache
def _constructed(module: str) -> frozenset[str]:
    """Names called in `module` (`events.JobEvent(...)` -> `JobEvent`)."""
    path = module_file(module)
    if path is None:
        return frozenset()
    names = set()
    for node in _nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return frozenset(names)


def _unwrap(handler: Any) -> Any:
    # Chalice's handler objects hold the function as `func`; `app.lambda_function`'s wrapper (the
    # schedules' functions) as `_original_func`; functools.wraps leaves `__wrapped__`
    while any(hasattr(handler, a) for a in ("func", "_original_func", "__wrapped__")):
        handler = getattr(handler, "func", None) or getattr(handler, "_original_func", None) or handler.__wrapped__
    return handler


def _roots_of(fn: Any, app_module: types.ModuleType) -> set[str]:
    """The modules a handler runs: its own, or, for one app.py defines, those `RUNS` lists."""
    fn = _unwrap(fn)
    module = getattr(fn, "__module__", None) or ""
    if module != app_module.__name__:
        return {module} if _ours(module) else set()
    if fn.__name__ not in app_module.RUNS:
        raise LookupError(f"app.py's handler {fn.__name__} is not in its RUNS table")
    return set(app_module.RUNS[fn.__name__])


def _everywhere(app_module: types.ModuleType) -> set[str]:
    """What runs in every function: app.py's cold start (`AT_COLD_START`), and the middleware and its hooks."""
    found: set[str] = set(app_module.AT_COLD_START)
    for value in vars(app_module).values():
        hooks = getattr(value, "at_end", None), getattr(value, "on_error", None)
        if isinstance(hooks[0], tuple) and isinstance(hooks[1], tuple):
            found.add(type(value).__module__)
            found.update(hook.__module__ for hook in (*hooks[0], *hooks[1]))
    return found


# The job operations that run processors' hooks: a function runs them when a module of it other
# than theirs calls one (enqueueing, as a schedule does, runs none).
OPERATIONS = frozenset({"retry", "cancel", "redrive_dead_letters"})


def _operations() -> set[str]:
    """The modules of the job operations that run processors' hooks (retry, cancel)."""
    from chalicelib import jobs

    return {_unwrap(jobs.retry).__module__, _unwrap(jobs.cancel).__module__}


def _processor_modules(app_module: types.ModuleType, job_queue: str | None, source: str | None = None) -> set[str]:
    """The modules of the processors a job queue's consumer runs (None: every processor's hooks
    only, which the job operations run); the consumer of its priority queue (`source`) does not
    run the queue's `normal_only` types."""
    from chalicelib import catalog

    found: set[str] = set()
    for proc in app_module.declared_processors():
        callables: list[Any] = [proc.on_final_failure, proc.on_retry, proc.on_cancel]
        if job_queue is not None:
            if proc.queue != job_queue:
                continue
            if source not in (None, job_queue) and proc.type in catalog.QUEUES[job_queue].normal_only:
                continue
            callables.append(proc.run)
        found.update(_unwrap(c).__module__ for c in callables if c is not None)
    return found


def reach(
    roots: Iterable[str], app_module: types.ModuleType, job_queue: str | None = None, source: str | None = None
) -> frozenset[str]:
    """The closure of `roots` and of the processors of `job_queue` (a consumer's, of the SQS
    queue `source`), with the listeners of the events it constructs and the hooks the job
    operations run, to a fixed point."""
    listeners: dict[str, set[str]] = {
        event.__name__: {_unwrap(fn).__module__ for fn in fns} for event, fns in app_module.LISTENERS.items()
    }
    operations = _operations()
    modules = closure(set(roots) | (_processor_modules(app_module, job_queue, source) if job_queue else set()))
    while True:
        more = set()
        for module in modules:
            for name in _constructed(module) & listeners.keys():
                more |= listeners[name]
        if job_queue is None and any(_constructed(m) & OPERATIONS for m in modules - operations):
            more |= _processor_modules(app_module, None)
        grown = closure(modules | more)
        if grown == modules:
            return frozenset(modules)
        modules = grown


def functions(app_module: types.ModuleType) -> dict[str, Function]:
    """Every Lambda function of the app (Chalice's resource names) and the modules it can run."""
    from chalicelib import catalog, config
    from infra import iam

    app = app_module.app
    stage = config.get().stage
    everywhere = _everywhere(app_module)
    out: dict[str, Function] = {}
    views = [entry.view_function for methods in app.routes.values() for entry in methods.values()]
    rest_roots = set(everywhere).union(*(_roots_of(view, app_module) for view in views))
    out[REST_FUNCTION] = Function(REST_FUNCTION, reach(rest_roots, app_module))
    for source in app.event_sources:
        handler = getattr(app_module, source.handler_string.split(".", 1)[1])
        roots = everywhere | _roots_of(handler, app_module)
        queue_name = getattr(source, "queue", None)
        queue = iam._logical(queue_name, stage) if queue_name else None
        job_queue = catalog.job_queue_of(queue) if queue in catalog.QUEUES else None
        job_queue = job_queue if job_queue in catalog.job_queues() else None
        out[source.name] = Function(source.name, reach(roots, app_module, job_queue, queue), queue)
    for fn in app.pure_lambda_functions:  # the schedules' functions (EventBridge Scheduler invokes them)
        handler = getattr(app_module, fn.handler_string.split(".", 1)[1])
        out[fn.name] = Function(fn.name, reach(everywhere | _roots_of(handler, app_module), app_module))
    for route, ws in app.websocket_handlers.items():
        handler = getattr(app_module, ws.handler_string.split(".", 1)[1])
        name = WEBSOCKET_FUNCTIONS[route]
        out[name] = Function(name, reach(everywhere | _roots_of(handler, app_module), app_module))
    return out
