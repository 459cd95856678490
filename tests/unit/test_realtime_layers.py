"""Realtime's modules import one way: the event catalogue and its listeners (`emitters`) on top of
delivery (`delivery`, then `fanout`, then `live`), never back; function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chalicelib" / "realtime"
PREFIX = "chalicelib.realtime"


def imports(source: str) -> set[str]:
    """The realtime modules a module's source imports, anywhere in it (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == PREFIX:
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX + "."):
            found.add(node.module.removeprefix(PREFIX + ".").split(".")[0])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix(PREFIX + ".") for a in node.names if a.name.startswith(PREFIX + ".")}
    return found


def graph() -> dict[str, set[str]]:
    return {
        path.stem: imports(path.read_text()) - {path.stem} for path in PACKAGE.glob("*.py") if path.stem != "__init__"
    }


def test_no_realtime_module_imports_one_that_imports_it_back():
    edges = graph()

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(edges[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(edges.get(module, ()))
        return seen

    cycles = sorted(name for name in edges if name in reaches(name))
    assert cycles == []


def test_delivery_knows_neither_the_event_catalogue_nor_its_listeners():
    edges = graph()
    assert "emitters" in edges  # the test reads the package it means to
    assert {"delivery"} <= edges["emitters"]
    for module in ("delivery", "fanout", "live", "store", "sender"):
        assert "emitters" not in edges[module], module
    assert not {"delivery", "fanout"} & edges["live"]
    assert "delivery" not in edges["fanout"]


def test_imports_inside_functions_count():
    source = (
        "from chalicelib.realtime import live, protocol\n"
        "import chalicelib.realtime.store\n"
        "def deliver():\n"
        "    from chalicelib.realtime import emitters  # the old fanout's way back\n"
        "    from chalicelib.realtime.sender import sender\n"
    )
    assert imports(source) == {"live", "protocol", "store", "emitters", "sender"}
