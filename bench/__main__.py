"""Run every `bench/bench_*.py` module's `main()`, in name order, each in a fresh interpreter so
that none inherits another's imports, event subscribers or clients (`python -m bench [name ...]`
runs only the modules whose names contain one of the given words; options from the first word
starting with `-` on go to each module run: `python -m bench soak --minutes 3`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(words: list[str]) -> list[str]:
    names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
    return [name for name in names if not words or any(word in name for word in words)]


def main(argv: list[str]) -> int:
    failed = []
    first_option = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    words, options = argv[:first_option], argv[first_option:]
    for name in modules(words):
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        # moto in-process with the stack's fix of its slow transactions (local.moto_transactions)
        code = (
            f"import sys; sys.argv = [{name!r}, *{options!r}]; import local.moto_transactions as t; t.install(); "
            f"import bench.{name} as b; b.main()"
        )
        if subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode != 0:
            failed.append(name)
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
