"""The shape of the code (issue 30's "Done when"), read from the source's imports with `ast`:
every import counts, at module level, inside a function or under `if TYPE_CHECKING:`.

- `chalicelib/jobs` is an engine: it imports no capability (its routes may use auth and audit);
- no two chalicelib packages or top-level modules import each other, directly or round a loop
  (a package's `routes.py`, the HTTP edge app.py composes, is left out: routes check roles with
  auth and record with audit, which themselves use the engine's jobs);
- nothing in chalicelib finds a module by name (`importlib`, `__import__`);
- app.py imports nothing from infra (the deploy tooling reads the app, never the other way);
- no chalicelib module is over 500 lines.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"
CAPABILITIES = ("content", "audit", "auth", "realtime", "dashboard", "schedules", "mail")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def sources() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path) -> set[str]:
    """Every module `path` imports (`from a import b` names `a.b` when that is a module of ours)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in sources())
    return found


def unit(module: str) -> str | None:
    """The package or top-level module of chalicelib a module belongs to (`chalicelib.jobs`)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "chalicelib" and len(parts) > 1 else None


def unit_imports() -> dict[str, set[str]]:
    """chalicelib package or top-level module -> the others it imports."""
    edges: dict[str, set[str]] = {}
    for module, path in sources().items():
        source = unit(module)
        if source is None or module.endswith(".routes"):
            continue
        targets = {unit(m) for m in imported(path)} - {None, source}
        edges.setdefault(source, set()).update(t for t in targets if t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_job_engine_imports_no_capability() -> None:
    allowed = {"chalicelib.jobs.routes": {"auth", "audit"}}
    wrong = []
    for module, path in sources().items():
        if not module.startswith("chalicelib.jobs"):
            continue
        for target in sorted(imported(path)):
            capability = target.split(".")[1] if target.startswith("chalicelib.") else None
            if capability in CAPABILITIES and capability not in allowed.get(module, set()):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_two_packages_or_top_level_modules_import_each_other() -> None:
    loops = cycles(unit_imports())
    edges = unit_imports()
    described = [" <-> ".join(loop) + f"  ({_why(loop, edges)})" for loop in loops]
    assert not loops, "package-level import cycles:\n" + "\n".join(described)


def _why(loop: list[str], edges: dict[str, set[str]]) -> str:
    return "; ".join(f"{a} -> {b}" for a in loop for b in sorted(edges.get(a, set()) & set(loop)))


def test_nothing_in_chalicelib_finds_a_module_by_name() -> None:
    found = []
    for module, path in sources().items():
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.Name) and node.id == "__import__"
            if named or (isinstance(node, ast.Import | ast.ImportFrom) and "importlib" in _names(node)):
                found.append(f"{module}:{node.lineno}")
    assert not found, found


def _names(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.ImportFrom):
        return {(node.module or "").split(".")[0]}
    return {alias.name.split(".")[0] for alias in node.names}


def test_app_py_imports_nothing_from_infra() -> None:
    assert not {m for m in imported(ROOT / "app.py") if m == "infra" or m.startswith("infra.")}


def test_no_chalicelib_module_is_over_500_lines() -> None:
    long = {module: n for module, path in sources().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_readers_see_every_kind_of_import(tmp_path: Path) -> None:
    """The checks above would pass on code they cannot read: these forms must all count."""
    source = tmp_path / "chalicelib" / "jobs" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from chalicelib.content import articles\n"
        "def f():\n    import chalicelib.audit.store\n    from chalicelib import auth\n"
        "from . import worker\n"
    )
    global ROOT
    sources()  # cached from the real tree first: run alone, this test would list it under tmp_path
    saved = ROOT
    ROOT = tmp_path
    try:
        found = imported(source)
    finally:
        ROOT = saved
    assert {"chalicelib.content", "chalicelib.audit.store", "chalicelib", "chalicelib.jobs"} <= found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_physical_name_rule_is_written_once() -> None:
    """`inkwell-<stage>-...` is `config.physical_name`'s (from `config.APP`): no f-string of the
    deployed code or the deploy tooling spells it again."""
    found = []
    for path in [ROOT / "app.py", *sorted(PACKAGE.rglob("*.py")), *sorted((ROOT / "infra").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if isinstance(first, ast.Constant) and str(first.value).startswith("inkwell-"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
