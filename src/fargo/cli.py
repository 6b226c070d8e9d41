"""The ``fargo`` command line: validate the spec, run the local twin, synthesize and deploy to AWS.

Heavy worlds are imported lazily, so ``fargo validate`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fargo.spec import SpecError, json_schema, load_spec
from fargo.spec.defaults import SPEC_FILE

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SpecError as err:
        print(err, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `fargo status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fargo",
        description="Microservices on AWS Fargate: one spec, the cloud and a local twin.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check fargo.yaml and report every problem")
    _spec_option(validate)
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of fargo.yaml")
    schema.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    schema.set_defaults(handler=_schema)

    _add_extensions(commands)
    return parser


def _spec_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--file", type=Path, default=Path(SPEC_FILE), help=f"spec file (default: {SPEC_FILE})"
    )


def _validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)
    services = len(spec.services)
    balancers = len(spec.load_balancers)
    print(f"{args.file}: valid ({services} services, {balancers} load balancers)")
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _add_extensions(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The twin's and the cloud's commands."""
    from fargo.local.commands import add_commands

    add_commands(commands, _spec_option)


if __name__ == "__main__":
    raise SystemExit(main())
