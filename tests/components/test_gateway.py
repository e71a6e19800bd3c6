"""Gateway builders: chart values, the Istio Gateway, and the gateway's own policies."""

from __future__ import annotations

from components.config import parse_config
from components.gateway import GatewayArgs, gateway_manifests, gateway_release


def gateway(**settings: object) -> GatewayArgs:
    config = parse_config(
        {"gateways": [{"name": "ingress", **settings}]}
        if settings.get("kind") == "egress"
        else {
            "gateways": [
                {
                    "name": "ingress",
                    "servers": [
                        {
                            "hosts": ["a.example.com", "b.example.com"],
                            "tls": {"credentialName": "ab-tls"},
                        }
                    ],
                    **settings,
                }
            ]
        }
    )
    return GatewayArgs(settings=config.gateways[0], version="1.30.5", callers=["shop"])


def test_release_and_namespace_are_named_after_the_gateway() -> None:
    release = gateway_release(gateway())
    assert (release.name, release.namespace, release.chart) == (
        "istio-ingress",
        "istio-ingress",
        "gateway",
    )


def test_single_replica_has_no_pdb_and_no_autoscaling_range() -> None:
    values = gateway_release(gateway(replicas={"min": 1, "max": 1})).values
    assert values["autoscaling"] == {"enabled": False}
    assert values["replicaCount"] == 1
    assert "podDisruptionBudget" not in values


def test_https_servers_and_an_http_server_that_only_redirects() -> None:
    servers = gateway_manifests(gateway())["gateway"]["spec"]["servers"]
    https, http = servers
    assert https["port"]["protocol"] == "HTTPS"
    assert https["tls"] == {"mode": "SIMPLE", "credentialName": "ab-tls"}
    assert http["port"] == {"number": 80, "name": "http-redirect", "protocol": "HTTP"}
    assert http["tls"] == {"httpsRedirect": True}
    assert http["hosts"] == ["a.example.com", "b.example.com"]


def test_gateway_namespace_is_injected_by_its_tag_and_closed_by_default() -> None:
    manifests = gateway_manifests(gateway(revision="1-30-5"))
    assert manifests["namespace"]["metadata"]["labels"]["istio.io/rev"] == "1-30-5"
    assert manifests["default-deny"]["spec"] == {}
    allow = manifests["allow"]["spec"]
    assert allow["selector"] == {"matchLabels": {"istio": "ingress"}}
    assert allow["rules"] == [{"to": [{"operation": {"ports": ["80", "443"]}}]}]


def test_egress_gateway_is_internal_and_only_for_the_mesh() -> None:
    args = gateway(kind="egress")
    assert gateway_release(args).values["service"] == {"type": "ClusterIP"}
    manifests = gateway_manifests(args)
    assert "gateway" not in manifests
    assert manifests["allow"]["spec"]["rules"] == [{"from": [{"source": {"namespaces": ["shop"]}}]}]


def test_a_highly_available_gateway_spreads_over_zones_and_nodes() -> None:
    from components.config import GatewaySettings
    from components.gateway import GatewayArgs, gateway_release

    settings = GatewaySettings.model_validate(
        {
            "name": "ingress",
            "replicas": {"min": 2, "max": 4},
            "servers": [{"hosts": ["a.example.com"], "tls": {"credentialName": "a"}}],
        }
    )
    plain = gateway_release(GatewayArgs(settings=settings, version="1.30.5")).values
    assert "affinity" not in plain and "topologySpreadConstraints" not in plain
    values = gateway_release(
        GatewayArgs(settings=settings, version="1.30.5", high_availability=True)
    ).values
    (spread,) = values["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"] == {"matchLabels": {"istio": "ingress"}}
    (preferred,) = values["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"] == {"matchLabels": {"istio": "ingress"}}


def test_a_gateway_waits_for_its_pods_unless_told_not_to() -> None:
    assert gateway().wait is True
    assert gateway_release(gateway()).wait is True


def test_a_gateway_api_ingress_has_no_chart_and_its_policy_selects_istiods_pods() -> None:
    args = gateway(api="gateway-api")
    args = GatewayArgs(settings=args.settings, version="1.30.5", route_namespaces=["shop"])
    manifests = gateway_manifests(args)
    assert set(manifests) == {
        "namespace",
        "default-deny",
        "allow",
        "gateway",
        "https-redirect",
        "options",
    }
    assert manifests["gateway"]["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert manifests["allow"]["spec"]["selector"] == {
        "matchLabels": {"gateway.networking.k8s.io/gateway-name": "ingress"}
    }
    assert manifests["namespace"]["metadata"]["labels"]["istio.io/rev"] == "stable"


def test_a_gateway_api_ingress_registers_its_options_before_the_gateway() -> None:
    from tests.conftest import run_config

    run = run_config(
        {
            "gateways": [
                {
                    "name": "web",
                    "api": "gateway-api",
                    "servers": [{"hosts": ["a.example.com"], "tls": {"credentialName": "t"}}],
                }
            ]
        }
    )
    by_name = {r.name: r for r in run.resources}
    assert not any(
        r.type == "kubernetes:helm.sh/v3:Release" and "web" in r.name for r in run.resources
    )
    assert by_name["gateway-web-options"].urn in by_name["gateway-web-gateway"].depends_on
