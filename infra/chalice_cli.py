"""The `chalice` command, targeting the Lambda runtime Inkwell deploys to.

Chalice picks the Lambda runtime from the Python that runs it (3.11 here). AWS deprecated the
python3.11 runtime on 2026-06-30 and stopped accepting new python3.11 functions on 2026-07-31
(cfn-lint rule E2533), so functions are deployed on `LAMBDA_RUNTIME` instead: this wrapper tells
Chalice so, which also makes it download the wheels built for that runtime (pydantic-core's
cp312 manylinux wheel; Chalice asks pip for the runtime's ABI but not its Python version, which
pip then takes from the running interpreter, so this adds `--python-version`). The code itself
is plain Python 3.11+, which python3.12 runs.

    python -m infra.chalice_cli package --stage prod ...   (as `chalice ...`)
"""

from __future__ import annotations

import sys

LAMBDA_RUNTIME = "python3.12"


def _target_runtime() -> None:
    from chalice import config
    from chalice.deploy import packager

    config.Config.lambda_python_version = property(lambda self: LAMBDA_RUNTIME)  # type: ignore[assignment,method-assign]
    version = LAMBDA_RUNTIME.removeprefix("python")

    def download_manylinux_wheels(self, abi, packages, directory, platforms=None):  # type: ignore[no-untyped-def]
        # Chalice's own method, with --python-version (one package at a time, as Chalice does:
        # pip gives up on the whole list at the first package without a matching wheel).
        for package in packages:
            arguments = ["--only-binary=:all:", "--no-deps"]
            for platform in platforms or ["manylinux2014_x86_64"]:
                arguments += ["--platform", platform]
            arguments += ["--implementation", "cp", "--abi", abi, "--python-version", version]
            self._execute("download", [*arguments, "--dest", directory, package])

    packager.PipRunner.download_manylinux_wheels = download_manylinux_wheels  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    from chalice.cli import main as chalice_main

    _target_runtime()
    sys.argv = ["chalice", *(argv if argv is not None else sys.argv[1:])]
    return chalice_main()


if __name__ == "__main__":
    sys.exit(main())
