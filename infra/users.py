"""Create a user on any stage or endpoint, through the same code the API uses.

    python -m infra.users --stage dev --email ada@example.com --role admin
    python -m infra.users --stage local --endpoint-url http://127.0.0.1:5000 --email ... --role editor

The password comes from the environment variable named by `--password-env`, or is asked for
(twice) on the terminal; it never appears on the command line. The user is written by
`chalicelib.auth.service.create_user` into the stage's tables (`inkwell-<stage>-users`), on AWS
with the usual credentials, or on the emulator given by `--endpoint-url`. Exit status: 0 created,
1 the email is taken, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from chalicelib import aws, config


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.users", description="Create an Inkwell user.")
    parser.add_argument("--stage", required=True, help="the stage whose tables to write (dev, prod, local, ...)")
    parser.add_argument("--email", required=True)
    parser.add_argument("--role", required=True, choices=["admin", "editor", "viewer"])
    parser.add_argument("--endpoint-url", help="an AWS emulator's URL (the local stack's moto server)")
    parser.add_argument("--region", help="AWS region (default: AWS_DEFAULT_REGION or us-east-1)")
    parser.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    return parser.parse_args(argv)


def read_password(args: argparse.Namespace) -> str:
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            raise SystemExit(f"error: the environment variable {args.password_env} is empty or not set")
        return password
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise SystemExit("error: the passwords differ")
    return password


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    password = read_password(args)

    from chalicelib.auth import service

    try:
        body = service.NewUser(email=args.email, password=password, role=args.role)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
        return 2
    # The stage and endpoint decide which tables are written: set them before anything is built.
    os.environ[config.STAGE] = args.stage
    if args.endpoint_url:
        os.environ[config.AWS_ENDPOINT] = args.endpoint_url
    if args.region:
        os.environ[config.REGION] = args.region
    config.reset()
    aws.reset()
    try:
        user = service.create_user(body.email, body.password, body.role)
    except service.EmailTaken:
        print(f"error: {body.email} is taken", file=sys.stderr)
        return 1
    print(json.dumps(user))
    return 0


if __name__ == "__main__":
    sys.exit(main())
