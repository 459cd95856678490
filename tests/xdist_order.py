"""Under `pytest -n 2 --dist loadfile`, the slowest test modules start first.

xdist hands a worker one module at a time, by default the modules with the most tests first.
The slowest modules here have few tests (Schemathesis, the real deploys, the packaging with
cfn-lint and checkov, the browser: a minute or more each), so they came last, and one worker ran
them alone while the other idled. This plugin's scheduler hands them out first, longest first;
the other modules follow in xdist's order, filling in around them.

`SLOW_MODULES` holds their seconds alone on the 2-core machine (only their order matters). A new
module that takes over a minute belongs in it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

SLOW_MODULES = {
    "tests/e2e/test_schemathesis.py": 150,
    "tests/functional/test_growth_counters.py": 150,
    "tests/functional/test_chalice_deploy.py": 140,
    "tests/package/test_package.py": 90,
    "tests/functional/test_fuzz.py": 90,
    "tests/e2e/test_dashboard_e2e.py": 75,
    "tests/functional/test_validation.py": 70,
    "tests/e2e/test_realtime.py": 35,
}


def slowest_first(workqueue: OrderedDict[str, Any]) -> None:
    """Move the slow modules still waiting to the front of xdist's queue, longest first."""
    for module in sorted(SLOW_MODULES, key=SLOW_MODULES.__getitem__):
        if module in workqueue:
            workqueue.move_to_end(module, last=False)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SlowestFirst(LoadFileScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            slowest_first(self.workqueue)
            super()._assign_work_unit(node)

    return SlowestFirst(config, log)
