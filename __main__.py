"""istio-mesh: a secure, observable Istio service mesh from this stack's config.

The config is validated as a whole before anything is declared: a bad stack config
ends with one message listing every problem, and registers nothing.
"""

import pulumi

from components.config import load_stack_config
from components.mesh import declare
from components.process import tune_for_preview

# What follows creates the SDK's objects by the hundred thousand and keeps them to the
# end: the collector's default full passes over them were 40% of a 1000-service
# preview. Only when memory is reclaimed changes (components/process.py). Tuned before
# the config is read: a large catalog's load made two full passes of its own.
tune_for_preview()
config = load_stack_config()
for name, value in declare(config).items():
    pulumi.export(name, value)
