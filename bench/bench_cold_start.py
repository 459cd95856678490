"""Cold start: importing `app` in a fresh process against importing only what it cannot do
without (`chalice, boto3, pydantic, jwt`), alternating runs, medians and their ratio.

Every Lambda container of Inkwell (REST, WebSocket, each queue, each schedule) imports app.py
first, so whatever app.py imports eagerly is paid on every cold start. Target: ratio <= 1.3.
Also measured as on a Lambda with active tracing (`AWS_XRAY_DAEMON_ADDRESS` set, as Lambda sets
it), where app.py loads aws-xray-sdk and patches botocore and http.client: target <= 1.0.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_COLD_START_RUNS", "11"))
TARGET = 1.3
TRACED_TARGET = 1.0
# what Lambda sets in a function with active tracing (LAMBDA_TASK_ROOT: aws-xray-sdk's Lambda path)
LAMBDA_TRACED = {
    "AWS_LAMBDA_FUNCTION_NAME": "inkwell-bench",
    "LAMBDA_TASK_ROOT": str(ROOT),
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
}
FLOOR = "import chalice, boto3, pydantic, jwt"
APP = "import app"


def _env(traced: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "PYTHON", "AWS_", "_X_AMZN"))}
    env.update({"INKWELL_STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1"})
    if traced:  # a Lambda runs only as a deployed stage, with its secrets (here from the environment)
        env.update(LAMBDA_TRACED, INKWELL_STAGE="bench", JWT_SECRET="b" * 32, AUDIT_DIGEST_KEY="bench-audit-key")
    return env


def import_seconds(statement: str, traced: bool = False) -> float:
    """Seconds `statement` takes in a fresh interpreter (its start-up excluded)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(traced), capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def heaviest_extra_modules(count: int = 8) -> list[tuple[str, float]]:
    """The modules `import app` loads beyond the floor, by their own import time (ms)."""

    def self_times(statement: str) -> dict[str, float]:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT, env=_env(), capture_output=True, text=True
        )
        times = {}
        for line in result.stderr.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if len(parts) == 3 and parts[0].strip().isdigit():
                times[parts[2].strip()] = int(parts[0]) / 1000
        return times

    floor = self_times(FLOOR)
    extra = {name: ms for name, ms in self_times(APP).items() if name not in floor}
    return sorted(extra.items(), key=lambda item: -item[1])[:count]


def measure(runs: int = RUNS) -> tuple[float, float, float]:
    import_seconds(APP)  # warm the file cache (and compile bytecode) once, untimed
    import_seconds(APP, traced=True)
    floor, app, traced = [], [], []
    for _ in range(runs):
        floor.append(import_seconds(FLOOR))
        app.append(import_seconds(APP))
        traced.append(import_seconds(APP, traced=True))
    return statistics.median(floor), statistics.median(app), statistics.median(traced)


def main() -> None:
    floor, app, traced = measure()
    ratio, traced_ratio = app / floor, traced / floor
    print(f"cold start, median of {RUNS} alternating fresh-process runs each")
    print(f"  floor  {FLOOR:40} {floor * 1000:7.1f} ms")
    print(f"  app    {APP:40} {app * 1000:7.1f} ms")
    print(f"  traced {APP + ' (Lambda, active tracing)':40} {traced * 1000:7.1f} ms")
    print(f"  ratio  {ratio:.2f}x (target <= {TARGET}x): {'ok' if ratio <= TARGET else 'OVER TARGET'}")
    verdict = "ok" if traced_ratio <= TRACED_TARGET else "OVER TARGET"
    print(f"  traced {traced_ratio:.2f}x (target <= {TRACED_TARGET}x): {verdict}")
    print("  heaviest modules beyond the floor (own import time):")
    for name, ms in heaviest_extra_modules():
        print(f"    {ms:6.1f} ms  {name}")
