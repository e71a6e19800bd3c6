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
}


def usage() -> str:
    lines = ["usage: python -m mesh COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<8} {summary}" for name, summary in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
