"""istio-mesh: a secure, observable Istio service mesh from this stack's config.

The config is validated as a whole before anything is declared: a bad stack config
ends with one message listing every problem, and registers nothing.
"""

import pulumi

from components.config import load_stack_config
from components.mesh import declare, mesh_outputs

config = load_stack_config()
declare(config)
for name, value in mesh_outputs(config).items():
    pulumi.export(name, value)
