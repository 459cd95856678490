"""The suite's scheduler (tests/xdist_order.py) starts the slowest modules first."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

from tests import xdist_order

ROOT = Path(__file__).resolve().parents[2]


def test_every_slow_module_listed_exists() -> None:
    # a renamed or split module would silently go back to the end of the queue
    assert [m for m in xdist_order.SLOW_MODULES if not (ROOT / m).is_file()] == []


def test_slow_modules_go_first_longest_first_and_the_rest_keep_their_order() -> None:
    slow = sorted(xdist_order.SLOW_MODULES, key=xdist_order.SLOW_MODULES.__getitem__, reverse=True)
    queue = OrderedDict.fromkeys(["tests/unit/test_a.py", slow[2], "tests/unit/test_b.py", slow[0]], {})
    xdist_order.slowest_first(queue)
    assert list(queue) == [slow[0], slow[2], "tests/unit/test_a.py", "tests/unit/test_b.py"]


def test_the_scheduler_hands_out_the_slowest_module_first_under_loadfile_only() -> None:
    options = {"dist": "loadfile", "tx": ["2*popen"]}
    config = SimpleNamespace(getvalue=options.__getitem__)
    scheduler = xdist_order.pytest_xdist_make_scheduler(config, None)  # type: ignore[arg-type]
    collection = ["tests/unit/test_a.py::test_one", "tests/e2e/test_schemathesis.py::test_two"]
    sent: list[list[int]] = []

    class Node:
        send_runtest_some = staticmethod(sent.append)

    node = Node()
    scheduler.registered_collections[node] = collection
    for nodeid in collection:  # as xdist queues them: by module, in its order
        scheduler.workqueue.setdefault(nodeid.split("::")[0], {})[nodeid] = False
    scheduler._assign_work_unit(node)
    assert sent == [[1]]
    options["dist"] = "load"
    assert xdist_order.pytest_xdist_make_scheduler(config, None) is None  # type: ignore[arg-type]
