"""The component package's provider: serves `istio_mesh.COMPONENTS` to the Pulumi
engine, which infers their schema from their annotations and docstrings.

The repository root is both the stack program and the package, so its `__main__.py`
runs in two ways. As a program, pulumi-language-python's executor runs it with the
runtime connected to the engine's resource monitor. As a plugin, the language host runs
`python <plugin directory> <engine address> [flags]` (its RunPlugin, for a directory
with a `__main__.py`): nothing is connected then, and the engine address is the first
argument.
"""

import sys
import tomllib
from pathlib import Path

import pulumi.runtime.settings
from pulumi.provider.experimental.host import component_provider_host

PACKAGE = "istio-mesh"
"""The package's name: the first part of every type token (`istio-mesh:index:IstioMesh`)."""

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def version() -> str:
    """The package's semantic version: pyproject.toml's, its one place."""
    with PYPROJECT.open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def is_plugin_run() -> bool:
    """Whether this process is the package's provider rather than the stack program: no
    resource monitor (a program always has one, the engine's or the test mocks') and an
    engine address to serve."""
    return pulumi.runtime.settings.get_monitor() is None and len(sys.argv) > 1


def serve() -> None:
    """Serve the public components until the engine stops the plugin."""
    from istio_mesh import COMPONENTS

    component_provider_host(COMPONENTS, name=PACKAGE, version=version())
