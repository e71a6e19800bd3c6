"""Arguments and error handling shared by the commands that run a stack."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from components.errors import ConfigError
from mesh.program import ProgramRun, StackFileError, run_stack


def add_stack_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """`--stack NAME | --stack-file PATH` and `--reference NAME=FILE`."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--stack", help="stack name: runs Pulumi.<NAME>.yaml")
    source.add_argument("--stack-file", type=Path, help="a Pulumi.<stack>.yaml file")
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="resolve the StackReference NAME from a `pulumi stack export` file "
        "(NAME as in promotion.fromStack, or its last segment, e.g. dev=dev.json)",
    )


def add_from_to_arguments(parser: argparse.ArgumentParser) -> None:
    """`--from STACK | --from-file PATH` and `--to STACK | --to-file PATH` (promote, diff)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", metavar="STACK", help="e.g. dev")
    source.add_argument("--from-file", type=Path, metavar="PATH", help="source stack file")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", dest="target", metavar="STACK", help="e.g. prod")
    target.add_argument("--to-file", type=Path, metavar="PATH", help="target stack file")


def parse_references(values: list[str]) -> dict[str, Path]:
    references = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise StackFileError(f"--reference {value!r}: expected NAME=FILE")
        references[name] = Path(path)
    return references


def run_from_arguments(
    args: argparse.Namespace, report: Callable[[str], None] | None = None
) -> ProgramRun | int:
    """Run the stack the arguments name; on bad input print why and return exit status 2."""
    report = report or (lambda message: print(message, file=sys.stderr))
    try:
        return run_stack(
            stack=args.stack,
            stack_file=args.stack_file,
            references=parse_references(args.reference),
        )
    except (ConfigError, StackFileError) as error:
        report(str(error))
        return 2
