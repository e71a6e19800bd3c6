"""istio-mesh: a secure, observable Istio service mesh from this stack's config.

The config is validated as a whole before anything is declared: a bad stack config
ends with one message listing every problem, and registers nothing.

The same directory is also the istio-mesh component package (`PulumiPlugin.yaml`): the
Python language host runs a plugin as `python <this directory> <engine address>`,
which runs this file too, with no Pulumi engine connection of a program. Then it serves
the public components (istio_mesh.host) instead of declaring the stack.
"""

import pulumi

from istio_mesh.host import is_plugin_run, serve

if is_plugin_run():
    serve()
else:
    from components.config import load_stack_config
    from components.process import tune_for_preview
    from istio_mesh import IstioMesh

    # What follows creates the SDK's objects by the hundred thousand and keeps them to
    # the end: the collector's default full passes over them were 40% of a 1000-service
    # preview. Only when memory is reclaimed changes (components/process.py). Tuned
    # before the config is read: a large catalog's load made two full passes of its own.
    tune_for_preview()
    config = load_stack_config()
    # The stack is the public component's first consumer; its resources keep the URNs
    # they had at the stack's top level (IstioMesh aliases them there).
    mesh = IstioMesh.from_config("istio-mesh", config)
    for name, value in mesh.stack_outputs.items():
        pulumi.export(name, value)
