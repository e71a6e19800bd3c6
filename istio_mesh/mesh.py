"""`IstioMesh`: the whole mesh from one args object, the stack config's keys.

The stack program declares it (`__main__.py`), and so may any Pulumi program, in any
language, through the component package (`PulumiPlugin.yaml`). Under the hood it is
`components.mesh.declare`: the same resources, names and checks as the stack's.
"""

# No `from __future__ import annotations`: Pulumi's schema inference reads these
# annotations at run time (pulumi.provider.experimental.analyzer).
from typing import Any

import pulumi

from components.config import MeshConfig, parse_config
from components.mesh import declare, gateway_api_crds
from istio_mesh.args import IstioMeshArgs
from istio_mesh.convert import has_outputs, model_to_config, to_config, unknown_error

TYPE = "istio-mesh:index:IstioMesh"
"""The package's token: `<package>:index:<class name>`, as the component provider
requires of every component it hosts."""


def mesh_config(args: Any) -> MeshConfig:
    """Validate `args` (plain values: resolved `IstioMeshArgs`) as the stack's config is
    validated; raises `ConfigError` listing every problem at its config path."""
    raw = model_to_config(MeshConfig, args)
    # parse_config takes `kubernetes:context` under this key, beside the project's keys.
    if "kubernetesContext" in raw:
        raw["kubernetes_context"] = raw.pop("kubernetesContext")
    return parse_config(raw)


class IstioMesh(pulumi.ComponentResource):
    """A secure, observable Istio service mesh on Kubernetes: the control plane from
    Istio's Helm charts (one istiod per revision, revision tags), gateways, mesh
    namespaces with STRICT mTLS and default-deny, the service catalog's routes and
    authorization, observability add-ons, and optionally a plug-in CA, several clusters
    and a promotion gate. The args are the istio-mesh stack's config keys; they are
    validated as a whole before anything is declared, and a problem is reported at the
    key's path (`istio-mesh:services[0].versions`). Values that are Outputs are awaited;
    one still unknown during a preview is an error (see the README). One IstioMesh per
    program (its children's names are the mesh's own, as in the stack); several
    clusters go in `clusters`."""

    istio_versions: pulumi.Output[list[str]]
    """The Istio version of each revision, in the order of `istio.revisions`."""
    revisions: pulumi.Output[list[str]]
    """The revision names (`1-30-5` for 1.30.5), one istiod release each."""
    tags: pulumi.Output[dict[str, str]]
    """Revision tag -> the revision it points at."""
    default_revision: pulumi.Output[str]
    """The revision that owns the validation webhook and the `default` tag."""
    gateways: pulumi.Output[dict[str, str]]
    """Gateway name -> its Helm release (also its namespace): `ingress` -> `istio-ingress`."""
    namespaces: pulumi.Output[list[str]]
    """The application namespaces in the mesh."""
    clusters: pulumi.Output[dict[str, str]]
    """Cluster name -> its network, for a multi-cluster mesh; empty for one cluster."""
    ca_root_not_after: pulumi.Output[str] | None
    """With a plug-in CA: when the mesh's root certificate expires (RFC 3339)."""
    ca_intermediate_not_after: pulumi.Output[str] | None
    """With a plug-in CA: when the first intermediate (of any cluster) expires (RFC 3339)."""

    def __init__(
        self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        if has_outputs(args):
            super().__init__(TYPE, name, None, opts)
            resolved = pulumi.Output.from_input(args)
            self._publish(resolved.apply(self._declare_resolved, run_with_unknowns=True))
        else:
            # Validated before the component registers: bad args register nothing.
            self._declare_config(name, mesh_config(args), opts)

    @classmethod
    def from_config(
        cls, name: str, config: MeshConfig, opts: pulumi.ResourceOptions | None = None
    ) -> "IstioMesh":
        """The mesh of a config validated already: the stack's (`load_stack_config`,
        which also knows which of its keys are secret)."""
        mesh = cls.__new__(cls)
        mesh._declare_config(name, config, opts)
        return mesh

    def _declare_config(
        self, name: str, config: MeshConfig, opts: pulumi.ResourceOptions | None
    ) -> None:
        # Read (once: it is cached) before anything registers: a Gateway API source that
        # fails is a config problem, and a config problem registers nothing.
        gateway_api_crds(config)
        super().__init__(TYPE, name, None, opts)
        # The stack's outputs, by the names the stack exports them under.
        self.stack_outputs: dict[str, Any] = declare(config, self._under())
        self._publish(pulumi.Output.from_input(self.stack_outputs))

    def _declare_resolved(self, args: Any) -> dict[str, Any]:
        error = unknown_error(to_config(MeshConfig, args), type(self).__name__)
        if error is not None:
            raise error
        outputs = declare(mesh_config(args), self._under())
        return pulumi.Output.from_input(outputs)  # type: ignore[return-value]

    def _under(self) -> pulumi.ResourceOptions:
        """The options of the resources at the mesh's top level. They lived at the
        stack's top level before this component existed: the alias keeps them (and,
        through the engine's alias inheritance, everything below them) in place."""
        return pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]
        )

    def _publish(self, outputs: pulumi.Output[dict[str, Any]]) -> None:
        def item(key: str, default: Any = None) -> pulumi.Output[Any]:
            return outputs.apply(lambda values: values.get(key, default))

        self.istio_versions = item("istioVersions")
        self.revisions = item("revisions")
        self.tags = item("tags")
        self.default_revision = item("defaultRevision")
        self.gateways = item("gateways")
        self.namespaces = item("namespaces")
        self.clusters = item("clusters", {})
        self.ca_root_not_after = item("caRootNotAfter")
        self.ca_intermediate_not_after = outputs.apply(_first_intermediate_expiry)  # type: ignore[arg-type]
        self.register_outputs(
            {
                "istioVersions": self.istio_versions,
                "revisions": self.revisions,
                "tags": self.tags,
                "defaultRevision": self.default_revision,
                "gateways": self.gateways,
                "namespaces": self.namespaces,
                "clusters": self.clusters,
                "caRootNotAfter": self.ca_root_not_after,
                "caIntermediateNotAfter": self.ca_intermediate_not_after,
            }
        )


def _first_intermediate_expiry(outputs: dict[str, Any]) -> str | None:
    """The stack's `caIntermediateNotAfter` is one date, or one per cluster: the
    earliest (RFC 3339 dates in UTC sort as text)."""
    value = outputs.get("caIntermediateNotAfter")
    if isinstance(value, dict):
        return min(value.values()) if value else None
    return value
