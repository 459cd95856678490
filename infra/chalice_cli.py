"""The `chalice` command, targeting the Lambda runtime Inkwell deploys to.

Chalice picks the Lambda runtime from the Python that runs it (3.11 here). AWS deprecated the
python3.11 runtime on 2026-06-30 and stopped accepting new python3.11 functions on 2026-07-31
(cfn-lint rule E2533), so functions are deployed on `LAMBDA_RUNTIME` instead: this wrapper tells
Chalice so, which also makes it download the wheels built for that runtime (pydantic-core's
cp312 manylinux wheel; Chalice asks pip for the runtime's ABI but not its Python version, which
pip then takes from the running interpreter, so this adds `--python-version`). The code itself
is plain Python 3.11+, which python3.12 runs.

    python -m infra.chalice_cli package --stage prod ...   (as `chalice ...`)

    python -m infra.chalice_cli deploy --stage dev          (a code change, once `make deploy` made the stage)

Before Chalice loads app.py, `deploy` is refused, in one line and before any AWS call, when it
would leave a broken stage: a local stage, or one `make deploy` has not created or fetched into
this clone (no `.chalice/deployed/<stage>.json`, a catalogue queue without its trigger in it, or
no WebSocket endpoints in the stage's config.json; Chalice cannot create tables, queues or alarms,
a trigger it creates lacks `ReportBatchItemFailures`, and it sets every function's environment to
config.json's). The app imports nothing from here: a plain `chalice deploy` or `chalice package`
is refused by app.py itself (`config.unguarded_chalice`), pointing here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

LAMBDA_RUNTIME = "python3.12"
MAKE_DEPLOY = "INKWELL_MAKE_DEPLOY"  # "1": `make deploy` runs this `chalice deploy` (it creates what is missing)


def _target_runtime() -> None:
    import warnings

    from chalice import config
    from chalice.deploy import packager

    # Chalice warns that the Python running it is not the runtime: here, that is the point.
    warnings.filterwarnings("ignore", message="You are currently running python", category=UserWarning)
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


def deploy_refusal(stage: str, project_dir: Path) -> str | None:
    """Why a plain `chalice deploy --stage <stage>` must not run (None when it may)."""
    from chalicelib import catalog, config
    from infra import chalice_config

    # config.json's variables only: they are all a plain `chalice deploy` gives the functions
    refused = chalice_config.stage_error(stage, {}, project_dir / ".chalice" / "config.json")
    if refused:
        return refused
    record = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    resources = json.loads(record.read_text()).get("resources", []) if record.exists() else []
    if not resources:
        return (
            f"stage {stage!r} was never created, or not from this clone: run `make deploy STAGE={stage}` first "
            "(it creates tables, queues and alarms, and fetches the stage's record from SSM)"
        )
    triggered = {r.get("queue") for r in resources if r.get("resource_type") == "sqs_event"}
    missing = [q for q in catalog.QUEUES if config.physical_name(stage, q) not in triggered]
    if missing:
        return (
            f"stage {stage!r} has no trigger yet for queue {', '.join(missing)}: "
            f"run `make deploy STAGE={stage}` (it creates the queue and a trigger reporting batch item failures)"
        )
    stages = json.loads((project_dir / ".chalice" / "config.json").read_text()).get("stages", {})
    endpoint = stages.get(stage, {}).get("environment_variables", {}).get(config.WS_MANAGEMENT_ENDPOINT, "")
    for api in (r.get("websocket_api_id") for r in resources if r.get("resource_type") == "websocket_api"):
        if f"//{api}." not in endpoint:
            return (
                f"stage {stage!r}: .chalice/config.json lacks its WebSocket endpoints, which every function needs: "
                f"run `make deploy STAGE={stage}` once more (it writes them there)"
            )
    return None


def _refuse_broken_deploys() -> None:
    """Before Chalice loads app.py for a `deploy`, refuse one that would break the stage (see the
    module's docstring); `make deploy` (MAKE_DEPLOY) creates what is missing first."""
    import click
    from chalice.cli.factory import CLIFactory

    load = CLIFactory.load_chalice_app

    def guarded(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        context = click.get_current_context(silent=True)
        if context is not None and context.command.name == "deploy" and os.environ.get(MAKE_DEPLOY) != "1":
            project_dir = Path((context.find_root().obj or {}).get("project_dir") or os.getcwd())
            refusal = deploy_refusal(context.params.get("stage") or "dev", project_dir)
            if refusal:
                raise SystemExit(f"chalice deploy: {refusal}")
        return load(self, *args, **kwargs)

    CLIFactory.load_chalice_app = guarded  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    from chalice.cli import main as chalice_main

    from chalicelib import config

    os.environ[config.CHALICE_CLI] = "1"  # app.py refuses the plain `chalice` command, not this one
    _target_runtime()
    _refuse_broken_deploys()
    sys.argv = ["chalice", *(argv if argv is not None else sys.argv[1:])]
    return chalice_main()


if __name__ == "__main__":
    sys.exit(main())
