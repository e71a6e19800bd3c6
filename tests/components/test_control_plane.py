"""Control-plane builders (no Pulumi) and the component's ordering under mocks."""

from __future__ import annotations

from components.config import parse_config
from components.control_plane import control_plane_releases, mesh_config, revision_of_tags
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
    assert revision_of_tags(settings) == {
        "default": "1-31-1",
        "canary": "1-31-1",
        "stable": "1-30-5",
    }
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
    assert plan["cni"].values == {
        "revision": "1-30-5",
        "global": {"hub": "docker.io/istio"},
        "profile": "ambient",
    }
    assert plan["ztunnel"].values == {"revision": "1-30-5", "hub": "docker.io/istio"}
    assert plan["cni"].version == plan["ztunnel"].version == "1.30.5"


def test_cni_and_ztunnel_run_the_default_revisions_version() -> None:
    plan = control_plane_releases(
        istio(
            dataplane="ambient",
            revisions=[{"version": "1.30.5"}, {"version": "1.31.1"}],
            defaultRevision="1-30-5",
        )
    )
    assert plan["cni"].version == plan["ztunnel"].version == "1.30.5"
    assert plan["cni"].values["revision"] == plan["ztunnel"].values["revision"] == "1-30-5"


def test_mesh_config_follows_the_settings() -> None:
    config = mesh_config(istio(outboundTrafficPolicy="REGISTRY_ONLY", accessLogs=False))
    assert config["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert "accessLogEncoding" not in config
    # The mesh's labeled namespaces, and `default` for the API server's Service.
    assert config["discoverySelectors"] == [
        {"matchLabels": {"istio-mesh.io/discovery": "enabled"}},
        {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
    ]
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


def test_charts_come_from_the_configured_repository() -> None:
    mirror = "https://charts.internal.example.com/istio"
    plan = control_plane_releases(istio(chartRepository=mirror + "/", dataplane="ambient"))
    assert {release.repository for release in plan.values()} == {mirror}
    assert {r.repository for r in control_plane_releases(istio()).values()} == {
        "https://blob.istio.io/istio-release/charts"
    }


def test_an_oci_repository_is_part_of_the_chart_reference() -> None:
    oci = control_plane_releases(istio(chartRepository="oci://ghcr.io/istio/release/charts"))
    assert oci["base"].chart_reference == "oci://ghcr.io/istio/release/charts/base"
    assert control_plane_releases(istio())["base"].chart_reference == "base"


def test_releases_wait_unless_told_not_to() -> None:
    assert all(release.wait for release in control_plane_releases(istio()).values())
    plan = control_plane_releases(istio(awaitReleases=False, cni=True))
    assert not any(release.wait for release in plan.values())


def test_releases_that_do_not_wait_are_not_atomic_either() -> None:
    # Helm makes an atomic release wait: a release that must not wait cannot be atomic.
    gateway = {
        "name": "ingress",
        "serviceType": "NodePort",
        "servers": [{"hosts": ["a.example.com"], "tls": {"credentialName": "a"}}],
    }
    waiting = releases(run_config({"gateways": [gateway]}))
    assert all(r.props["atomic"] is True and "skipAwait" not in r.props for r in waiting.values())
    config = {"istio": {"awaitReleases": False}, "gateways": [gateway]}
    not_waiting = releases(run_config(config))
    assert set(not_waiting) == {"istio-base", "istiod-1-30-5", "istio-ingress"}
    assert all(r.props["atomic"] is False for r in not_waiting.values())
    assert all(r.props["skipAwait"] is True for r in not_waiting.values())


def test_oci_charts_are_pulled_by_reference_without_repository_options() -> None:
    config = {"istio": {"chartRepository": "oci://ghcr.io/istio/release/charts"}}
    base = releases(run_config(config))["istio-base"]
    assert base.props["chart"] == "oci://ghcr.io/istio/release/charts/base"
    assert "repositoryOpts" not in base.props


def test_no_setting_that_native_sidecars_ignore() -> None:
    # holdApplicationUntilProxyStarts does nothing where proxies are native sidecars, the
    # default on every Kubernetes Istio 1.30+ supports: the mesh config does not pretend.
    assert "holdApplicationUntilProxyStarts" not in str(mesh_config(istio()))


def test_a_canary_keeps_the_older_minors_behaviour_when_asked() -> None:
    settings = istio(
        revisions=[{"version": "1.30.5"}, {"version": "1.31.1", "compatibilityVersion": "1.30"}]
    )
    plan = control_plane_releases(settings)
    assert plan["istiod-1-31-1"].values["compatibilityVersion"] == "1.30"
    assert "compatibilityVersion" not in plan["istiod-1-30-5"].values


def test_every_istio_image_comes_from_a_hub_istio_keeps() -> None:
    plan = control_plane_releases(istio(dataplane="ambient"))
    assert plan["istiod-1-30-5"].values["global"] == {"hub": "docker.io/istio"}
    assert plan["cni"].values["global"] == {"hub": "docker.io/istio"}
    assert plan["ztunnel"].values["hub"] == "docker.io/istio"
    mirror = control_plane_releases(istio(hub="registry.example.com/istio/"))
    assert mirror["istiod-1-30-5"].values["global"] == {"hub": "registry.example.com/istio"}


def test_one_ambient_namespace_brings_the_ambient_data_plane_to_a_sidecar_mesh() -> None:
    """Every revision gets the profile: a tag moving during a canary may hand the ambient
    namespace to either; cni and ztunnel follow the default revision."""
    settings = istio(revisions=[{"version": "1.30.5"}, {"version": "1.31.1"}])
    assert settings.dataplane == "sidecar"
    plan = control_plane_releases(settings, ambient=True)
    assert set(plan) == {"base", "cni", "istiod-1-30-5", "istiod-1-31-1", "ztunnel"}
    assert plan["istiod-1-30-5"].values["profile"] == "ambient"
    assert plan["istiod-1-31-1"].values["profile"] == "ambient"
    assert plan["ztunnel"].values["revision"] == "1-30-5"
    # Said explicitly, it wins over the mesh-wide dataplane either way.
    assert "ztunnel" not in control_plane_releases(istio(dataplane="ambient"), ambient=False)
