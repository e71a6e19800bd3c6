"""Control-plane builders (no Pulumi) and the component's ordering under mocks."""

from __future__ import annotations

from components.config import parse_config
from components.control_plane import control_plane_releases, mesh_config, tags_by_revision
from tests.conftest import run_config
from tests.test_stacks import _depends, releases


def istio(**settings: object):
    return parse_config({"istio": {"revisions": [{"version": "1.30.5"}], **settings}}).istio


def test_revision_is_derived_from_the_version() -> None:
    plan = control_plane_releases(istio(revisions=[{"version": "1.31.1"}]))
    assert plan["istiod-1-31-1"].values["revision"] == "1-31-1"
    assert plan["istiod-1-31-1"].version == "1.31.1"


def test_default_revision_owns_the_default_tag() -> None:
    settings = istio(
        revisions=[{"version": "1.30.5"}, {"version": "1.31.1"}],
        tags={"stable": "1-30-5", "canary": "1-31-1"},
        defaultRevision="1-31-1",
    )
    assert tags_by_revision(settings) == {"1-30-5": ["stable"], "1-31-1": ["default", "canary"]}
    assert control_plane_releases(settings)["base"].values == {"defaultRevision": "1-31-1"}


def test_sidecar_mode_without_cni_installs_base_and_istiod_only() -> None:
    assert set(control_plane_releases(istio())) == {"base", "istiod-1-30-5"}


def test_cni_in_sidecar_mode() -> None:
    plan = control_plane_releases(istio(cni=True))
    assert plan["cni"].chart == "cni" and plan["cni"].name == "istio-cni"
    assert plan["istiod-1-30-5"].values["cni"] == {"enabled": True}


def test_ambient_installs_cni_and_ztunnel_with_the_ambient_profile() -> None:
    plan = control_plane_releases(istio(dataplane="ambient"))
    assert set(plan) == {"base", "cni", "istiod-1-30-5", "ztunnel"}
    assert plan["istiod-1-30-5"].values["profile"] == "ambient"
    assert plan["cni"].values["profile"] == "ambient"
    assert plan["ztunnel"].values == {"revision": "1-30-5"}


def test_mesh_config_follows_the_settings() -> None:
    config = mesh_config(istio(outboundTrafficPolicy="REGISTRY_ONLY", accessLogs=False))
    assert config["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert "accessLogEncoding" not in config
    assert config["discoverySelectors"] == [{"matchLabels": {"istio-mesh.io/discovery": "enabled"}}]
    assert mesh_config(istio())["accessLogEncoding"] == "JSON"
    providers = [{"name": "tracing", "zipkin": {"service": "z.o.svc.cluster.local", "port": 9411}}]
    assert mesh_config(istio(), providers)["extensionProviders"] == providers


def test_without_high_availability_istiod_is_small_and_single() -> None:
    values = control_plane_releases(istio())["istiod-1-30-5"].values
    assert values["autoscaleMin"] == 1
    assert "topologySpreadConstraints" not in values


def test_ambient_order_is_base_cni_istiod_ztunnel() -> None:
    run = run_config({"istio": {"revisions": [{"version": "1.30.5"}], "dataplane": "ambient"}})
    installed = releases(run)
    base, cni = installed["istio-base"], installed["istio-cni"]
    istiod, ztunnel = installed["istiod-1-30-5"], installed["ztunnel"]
    assert _depends(run, cni, base)
    assert _depends(run, istiod, cni)
    assert _depends(run, ztunnel, istiod)
