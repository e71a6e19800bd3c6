"""`python -m mesh COMMAND ...`: see a stack without a cluster or the Pulumi CLI.

Each command lives in its own module exposing `main(argv) -> exit status`.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "render": "write every object, Helm release and resource a stack declares",
    "check": "run the policy pack on a stack or on Kubernetes YAML",
    "graph": "draw gateways, hosts, services, subsets and who may call whom",
    "bench": "measure the program and the policy pack on generated meshes",
    "promote": "copy promotable settings from one stack file to another",
    "diff": "what differs between two stacks' objects, object by object",
}


def version() -> str:
    """The version of this checkout: its pyproject version (the package is installed
    from it, `pip install -e .`, for the `mesh` command)."""
    import tomllib
    from pathlib import Path

    project = Path(__file__).resolve().parent.parent / "pyproject.toml"
    with project.open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def usage() -> str:
    lines = [
        "usage: mesh COMMAND [ARGS]   (or python -m mesh ...; mesh --version)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<8} {summary}" for name, summary in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv and argv[0] == "--version":
        print(f"mesh {version()}")
        return 0
    if not argv:  # a command is required: a script calling `mesh` alone did nothing
        print(f"no command given\n\n{usage()}", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"mesh.{command}")
    except ModuleNotFoundError as error:
        if error.name != f"mesh.{command}":
            raise
        print(f"`{command}` is not available in this version", file=sys.stderr)
        return 2
    status: int = module.main(rest)
    return status


def entry() -> None:
    """The `mesh` command."""
    import signal

    # `mesh diff ... | head` ends quietly, as other command-line tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entry()
