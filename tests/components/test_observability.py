"""Telemetry, tracing provider, add-ons, alert rules and the Grafana secret."""

from __future__ import annotations

from pathlib import Path

from components.config import parse_config
from components.helm import ChartRelease
from components.observability import (
    addon_release,
    alerting_rules,
    mesh_telemetry,
    namespace_telemetry,
    tracing_endpoint,
    tracing_provider,
)
from mesh.render import write_render
from tests.conftest import stack_run
from tests.test_stacks import RELEASE, _depends, manifests, releases


def observability(**settings: object):
    return parse_config({"observability": settings}).observability


def test_dev_samples_everything_and_prod_one_percent() -> None:
    for stack, percent in (("dev", 100), ("prod", 1)):
        (telemetry,) = [
            m
            for m in manifests(stack_run(stack), "Telemetry")
            if m["metadata"] == {"name": "mesh-default", "namespace": "istio-system"}
        ]
        tracing = telemetry["spec"]["tracing"]
        assert tracing == [
            {"providers": [{"name": "tracing"}], "randomSamplingPercentage": percent}
        ]
        assert telemetry["spec"]["accessLogging"] == [
            {"providers": [{"name": "envoy"}], "disabled": False}
        ]


def test_tracing_provider_is_declared_in_mesh_config_of_every_istiod() -> None:
    for release in releases(stack_run("dev")).values():
        if release.props["chart"] == "istiod":
            (provider,) = release.props["values"]["meshConfig"]["extensionProviders"]
            assert provider == {
                "name": "tracing",
                "opentelemetry": {
                    "service": "jaeger-collector.observability.svc.cluster.local",
                    "port": 4317,
                },
            }


def test_zipkin_and_external_backends() -> None:
    settings = observability(tracing={"provider": "zipkin", "service": "zipkin.tracing.svc"})
    assert tracing_provider(settings) == {
        "name": "tracing",
        "zipkin": {"service": "zipkin.tracing.svc", "port": 9411},
    }


def test_no_backend_means_no_tracing() -> None:
    settings = observability()
    assert not settings.tracing_enabled
    istio = parse_config({}).istio
    assert "tracing" not in mesh_telemetry(settings, istio)["spec"]


def test_dev_installs_the_four_add_ons_after_istiod() -> None:
    run = stack_run("dev")
    installed = releases(run)
    for name in ("prometheus", "grafana", "jaeger", "kiali"):
        assert installed[name].props["namespace"] == "observability"
        for istiod in ("istiod-1-30-5", "istiod-1-31-1"):
            assert _depends(run, installed[name], installed[istiod])
    kiali = installed["kiali"].props["values"]["external_services"]
    assert kiali["prometheus"]["url"] == "http://prometheus-server.observability.svc.cluster.local"
    assert kiali["grafana"]["enabled"] and kiali["tracing"]["enabled"]


def test_grafana_dashboards_come_from_the_istio_release_running() -> None:
    values = releases(stack_run("dev"))["grafana"].props["values"]
    urls = [d["url"] for d in values["dashboards"]["istio"].values()]
    assert urls and all("/istio/istio/1.30.5/" in url for url in urls)


def test_alert_rules_cover_errors_latency_and_plain_text_requests() -> None:
    rules = alerting_rules(observability(alerts={"errorRatio": 0.1}))["groups"][0]["rules"]
    by_name = {rule["alert"]: rule["expr"] for rule in rules}
    assert "> 0.1" in by_name["IstioHigh5xxRatio"]
    assert "histogram_quantile(0.99" in by_name["IstioHighP99Latency"]
    assert 'connection_security_policy!="mutual_tls"' in by_name["IstioRequestWithoutMutualTls"]
    prometheus = releases(stack_run("dev"))["prometheus"].props["values"]
    assert prometheus["serverFiles"]["alerting_rules.yml"]["groups"][0]["rules"]


def test_grafana_password_is_generated_and_secret(tmp_path: Path) -> None:
    run = stack_run("dev")
    (password,) = run.of_type("random:index/randomPassword:RandomPassword")
    assert password.props["length"] >= 20
    grafana = releases(run)["grafana"]
    secret = grafana.props["values"]["adminPassword"]
    assert secret["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    write_render(run, tmp_path)
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "mock-observability-grafana-admin-password" not in written


def test_scrapers_and_tracing_backend_are_reachable_from_mesh_namespaces() -> None:
    run = stack_run("dev")
    for policy in manifests(run, "NetworkPolicy"):
        values = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
        assert "observability" in values["matchExpressions"][0]["values"]
    for sidecar in manifests(run, "Sidecar"):
        assert "observability/*" in sidecar["spec"]["egress"][0]["hosts"]


def test_add_ons_need_prometheus() -> None:
    import pytest

    from components.errors import ConfigError

    with pytest.raises(ConfigError, match=r"observability.addons.kiali: Kiali needs"):
        parse_config({"observability": {"addons": {"kiali": True}}})
    assert RELEASE


def test_default_ports_of_each_tracing_backend() -> None:
    jaeger = "jaeger-collector.observability.svc.cluster.local"
    assert tracing_endpoint(observability()) == (jaeger, 4317)
    assert tracing_endpoint(observability(tracing={"provider": "zipkin"})) == (jaeger, 9411)
    external = {"provider": "opentelemetry", "service": "otel.tracing.svc"}
    assert tracing_endpoint(observability(tracing=external)) == ("otel.tracing.svc", 4317)
    assert tracing_endpoint(observability(tracing={**external, "port": 4000})) == (
        "otel.tracing.svc",
        4000,
    )


def test_a_namespace_samples_at_its_own_rate() -> None:
    assert namespace_telemetry("shop", 25.0) == {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "namespace-default", "namespace": "shop"},
        "spec": {
            "tracing": [{"providers": [{"name": "tracing"}], "randomSamplingPercentage": 25.0}]
        },
    }


def test_releases_wait_by_default() -> None:
    assert addon_release("kiali", observability(), "1.30.5").wait is True
    assert addon_release("kiali", observability(), "1.30.5").name == "kiali"
    assert ChartRelease(name="x", chart="base", version="1.30.5", namespace="istio-system").wait
