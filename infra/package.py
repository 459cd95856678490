"""`make package STAGE=<stage>`: a complete CloudFormation (SAM) template and its code, offline.

    python -m infra.package prod [--out dist/prod]

Refuses a local stage (development secrets). Reads the app through Chalice's application graph
(`infra.app_shape`), brings `.chalice/config.json` in step, rewrites the stage's committed policy
file if stale (`chalice package` insists on reading it even though the overlay replaces it),
generates the overlay (`infra.template`), runs `chalice package --merge-template`, and refuses
the result if it lacks anything the issue lists.
Needs no AWS credentials, only `AWS_DEFAULT_REGION`; `chalice package` downloads the Lambda
(manylinux) wheels of requirements.txt from PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from chalicelib import config
from infra import app_shape, chalice_config, iam, template


def package(stage: str, out: Path) -> Path:
    error = chalice_config.stage_error(stage)
    if error:
        raise SystemExit(error)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    changed = chalice_config.sync()  # before reading the app: autogen_policy decides the role names
    shape = app_shape.load(stage)
    if chalice_config.sync(shape) or changed:
        print(f"updated {chalice_config.PATH.relative_to(app_shape.ROOT)} (stage env, timeouts, autogen_policy)")
    for path in iam.write_policy_files(stage):
        print(f"wrote {path.relative_to(app_shape.ROOT)} (commit it)")
    out.mkdir(parents=True, exist_ok=True)
    overlay = out.parent / f"{stage}-overlay.json"
    template.write(str(overlay), template.overlay(shape, os.environ.get(config.ARTICLE_WEBHOOK_URL, "")))
    command = [sys.executable, "-m", "infra.chalice_cli", "package", "--stage", stage]
    command += ["--merge-template", str(overlay), str(out)]
    # no credentials reach `chalice package`: it must work offline; the stage's environment must
    # reach it, since app.py computes the stage's queue names at import (see infra.app_shape)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_DEFAULT_REGION"}
    env.update(app_shape.stage_environment(stage))
    subprocess.run(command, check=True, cwd=app_shape.ROOT, env=env)
    sam = out / "sam.json"
    problems = template.problems(json.loads(sam.read_text()), shape)
    if problems:
        raise SystemExit("the packaged template is incomplete:\n  " + "\n  ".join(problems))
    print(f"{sam}: {len(json.loads(sam.read_text())['Resources'])} resources, {len(shape.sqs)} SQS event sources")
    return sam


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("--out", type=Path, help="default dist/<stage>")
    args = parser.parse_args(argv)
    package(args.stage, args.out or app_shape.ROOT / "dist" / args.stage)


if __name__ == "__main__":
    main()
