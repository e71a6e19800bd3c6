"""istio-mesh's public component API: the components a Pulumi program in any language
declares (through the component package, `PulumiPlugin.yaml`) or a Python program
imports. Their args are `pulumi.Input`-typed (istio_mesh.args); `COMPONENTS` is what
the package's provider hosts."""

import pulumi

from istio_mesh.mesh import IstioMesh
from istio_mesh.parts import ControlPlane, Gateway, MeshNamespace, Services

COMPONENTS: list[type[pulumi.ComponentResource]] = [
    IstioMesh,
    ControlPlane,
    Gateway,
    MeshNamespace,
    Services,
]
"""Every public component, in the order the package schema lists them."""

__all__ = ["COMPONENTS", "ControlPlane", "Gateway", "IstioMesh", "MeshNamespace", "Services"]
