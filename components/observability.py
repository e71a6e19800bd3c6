"""Observability: Istio's Telemetry API, the tracing provider, add-ons and alerting rules.

Mesh-wide defaults live in a `Telemetry` in the root namespace (tracing sampling,
access logs through the built-in `envoy` provider); namespaces may override sampling.
The tracing provider itself is declared in mesh config (`extensionProviders`, built by
`tracing_provider`). Add-ons come from their upstream charts, pinned, in one namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_random as random

from components import naming
from components.config import IstioSettings, ObservabilitySettings
from components.helm import ChartRelease, register_release
from components.k8s import Manifest, child_options, register_manifest

TELEMETRY_API = "telemetry.istio.io/v1"
TRACING_PROVIDER = "tracing"
"""Name of the mesh's tracing extension provider, referenced by Telemetry resources."""

# Upstream charts, pinned to the versions Istio's own add-on manifests are built from.
ADDON_CHARTS = {
    "prometheus": ("https://prometheus-community.github.io/helm-charts", "prometheus", "27.20.0"),
    "grafana": ("https://grafana.github.io/helm-charts", "grafana", "9.2.2"),
    "jaeger": ("https://jaegertracing.github.io/helm-charts", "jaeger", "3.4.1"),
    "kiali": ("https://kiali.org/helm-charts", "kiali-server", "2.11.0"),
}
ISTIO_SOURCE = "https://raw.githubusercontent.com/istio/istio"
ISTIO_DASHBOARDS = {
    "istio-mesh": "istio-mesh-dashboard.gen.json",
    "istio-service": "istio-service-dashboard.json",
    "istio-workload": "istio-workload-dashboard.json",
    "istio-performance": "istio-performance-dashboard.json",
    "istio-control-plane": "pilot-dashboard.gen.json",
}


def _service(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def prometheus_url(settings: ObservabilitySettings) -> str:
    return f"http://{_service('prometheus-server', settings.namespace)}"


def tracing_endpoint(settings: ObservabilitySettings) -> tuple[str, int]:
    """(host, port) where proxies send spans: the configured backend or our Jaeger."""
    tracing = settings.tracing
    # Zipkin's port, or OTLP/gRPC's: where the Jaeger chart's all-in-one collector
    # receives each, and the defaults of any other backend.
    default_port = 9411 if tracing.provider == "zipkin" else 4317
    if tracing.service:
        return tracing.service, tracing.port or default_port
    return _service("jaeger-collector", settings.namespace), default_port


def tracing_provider(settings: ObservabilitySettings) -> dict[str, Any]:
    """The `meshConfig.extensionProviders` entry proxies export spans with."""
    host, port = tracing_endpoint(settings)
    protocol = "zipkin" if settings.tracing.provider == "zipkin" else "opentelemetry"
    return {"name": TRACING_PROVIDER, protocol: {"service": host, "port": port}}


def mesh_telemetry(settings: ObservabilitySettings, istio: IstioSettings) -> Manifest:
    """Mesh-wide `Telemetry`: sampling to the tracing provider, access logs via `envoy`."""
    spec: dict[str, Any] = {
        "accessLogging": [{"providers": [{"name": "envoy"}], "disabled": not istio.access_logs}],
    }
    if settings.tracing_enabled:
        spec["tracing"] = [
            {
                "providers": [{"name": TRACING_PROVIDER}],
                "randomSamplingPercentage": settings.tracing.sampling_percent,
            }
        ]
    return {
        "apiVersion": TELEMETRY_API,
        "kind": "Telemetry",
        "metadata": {"name": "mesh-default", "namespace": naming.ISTIO_SYSTEM},
        "spec": spec,
    }


def namespace_telemetry(namespace: str, sampling_percent: float) -> Manifest:
    return {
        "apiVersion": TELEMETRY_API,
        "kind": "Telemetry",
        "metadata": {"name": "namespace-default", "namespace": namespace},
        "spec": {
            "tracing": [
                {
                    "providers": [{"name": TRACING_PROVIDER}],
                    "randomSamplingPercentage": sampling_percent,
                }
            ]
        },
    }


def alerting_rules(
    settings: ObservabilitySettings, extra: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Prometheus alerting rules on Istio's standard metrics, then `extra` (the plug-in
    CA's expiry rules, components.ca)."""
    alerts = settings.alerts
    by_service = "sum by (destination_service, destination_service_namespace)"
    requests = 'istio_requests_total{reporter="destination"'
    return {
        "groups": [
            {
                "name": "istio-mesh",
                "rules": [
                    {
                        "alert": "IstioHigh5xxRatio",
                        "expr": (
                            f'{by_service} (rate({requests}, response_code=~"5.."}}[5m]))'
                            f" / {by_service} (rate({requests}}}[5m])) > {alerts.error_ratio}"
                        ),
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "{{ $labels.destination_service }} answers more than "
                            f"{alerts.error_ratio:.0%} of requests with 5xx"
                        },
                    },
                    {
                        "alert": "IstioHighP99Latency",
                        "expr": (
                            "histogram_quantile(0.99, sum by (destination_service, le) "
                            "(rate(istio_request_duration_milliseconds_bucket"
                            f'{{reporter="destination"}}[5m]))) > {alerts.p99_latency_ms}'
                        ),
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "p99 latency of {{ $labels.destination_service }} above "
                            f"{alerts.p99_latency_ms} ms"
                        },
                    },
                    {
                        # STRICT mTLS means this is always zero; anything else is a hole.
                        "alert": "IstioRequestWithoutMutualTls",
                        "expr": (
                            "sum by (source_workload, source_workload_namespace, "
                            f"destination_service) (rate({requests}, "
                            'connection_security_policy!="mutual_tls"}[5m])) > 0'
                        ),
                        "for": "1m",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "{{ $labels.destination_service }} received requests "
                            "without mutual TLS from {{ $labels.source_workload }}"
                        },
                    },
                    *extra,
                ],
            }
        ]
    }


def addon_release(
    addon: str,
    settings: ObservabilitySettings,
    istio_version: str,
    wait: bool = True,
    extra_alerts: Sequence[dict[str, Any]] = (),
) -> ChartRelease:
    """One add-on's release (Grafana's admin password is set by the component); `wait`
    as `istio.awaitReleases` says; `extra_alerts` as for `alerting_rules`."""
    repository, chart, version = ADDON_CHARTS[addon]
    namespace = settings.namespace
    values: dict[str, Any]
    if addon == "prometheus":
        values = {
            "alertmanager": {"enabled": False},
            "kube-state-metrics": {"enabled": False},
            "prometheus-node-exporter": {"enabled": False},
            "prometheus-pushgateway": {"enabled": False},
            # The chart's default `kubernetes-pods` job scrapes the prometheus.io/*
            # annotations that injection puts on every pod (merged app + Envoy metrics).
            "serverFiles": {"alerting_rules.yml": alerting_rules(settings, extra_alerts)},
        }
    elif addon == "grafana":
        base = f"{ISTIO_SOURCE}/{istio_version}/manifests/addons/dashboards"
        values = {
            "datasources": {
                "datasources.yaml": {
                    "apiVersion": 1,
                    "datasources": [
                        {
                            "name": "Prometheus",
                            "type": "prometheus",
                            "url": prometheus_url(settings),
                            "access": "proxy",
                            "isDefault": True,
                        }
                    ],
                }
            },
            "dashboardProviders": {
                "dashboardproviders.yaml": {
                    "apiVersion": 1,
                    "providers": [
                        {
                            "name": "istio",
                            "folder": "istio",
                            "type": "file",
                            "disableDeletion": False,
                            "options": {"path": "/var/lib/grafana/dashboards/istio"},
                        }
                    ],
                }
            },
            # Istio's dashboards from the release the mesh runs, not a floating copy.
            "dashboards": {
                "istio": {
                    name: {"url": f"{base}/{file}", "datasource": "Prometheus"}
                    for name, file in ISTIO_DASHBOARDS.items()
                }
            },
        }
    elif addon == "jaeger":
        values = {
            "provisionDataStore": {"cassandra": False},
            "allInOne": {"enabled": True},
            "storage": {"type": "memory"},
            "agent": {"enabled": False},
            "collector": {"enabled": False},
            "query": {"enabled": False},
        }
    else:
        values = {
            "istio_namespace": naming.ISTIO_SYSTEM,
            "auth": {"strategy": settings.kiali_auth},
            "external_services": {
                "prometheus": {"url": prometheus_url(settings)},
                "grafana": {
                    "enabled": settings.addons.grafana,
                    "internal_url": f"http://{_service('grafana', namespace)}",
                },
                "tracing": {
                    "enabled": settings.addons.jaeger,
                    "internal_url": f"http://{_service('jaeger-query', namespace)}:16685/jaeger",
                    "use_grpc": True,
                },
            },
        }
    return ChartRelease(
        name=addon,
        chart=chart,
        version=version,
        namespace=namespace,
        values=values,
        repository=repository,
        wait=wait,
    )


def enabled_addons(settings: ObservabilitySettings) -> list[str]:
    return [addon for addon in ADDON_CHARTS if getattr(settings.addons, addon)]


class MeshObservability(pulumi.ComponentResource):
    """Telemetry resources and the optional add-ons, ordered after istiod.

    `grafana_password` is the generated Grafana admin password, a secret output;
    `extra_alerts` join the Prometheus rules (the plug-in CA's, components.ca).
    """

    grafana_password: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        settings: ObservabilitySettings,
        istio: IstioSettings,
        istio_version: str,
        opts: pulumi.ResourceOptions | None = None,
        extra_alerts: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__("istio-mesh:observability:MeshObservability", name, None, opts)
        register_manifest(
            f"{name}-mesh-telemetry", mesh_telemetry(settings, istio), child_options(self, opts)
        )
        for override in settings.namespaces:
            register_manifest(
                f"{name}-telemetry-{override.namespace}",
                namespace_telemetry(override.namespace, override.sampling_percent),
                child_options(self, opts),
            )
        self.grafana_password = None
        addons = enabled_addons(settings)
        if addons:
            key, value = naming.DISCOVERY_LABEL
            namespace = register_manifest(
                f"{name}-namespace",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    # Discovered by istiod, so proxies can reach the tracing backend even
                    # with REGISTRY_ONLY; not injected: Prometheus scrapes plain-text ports.
                    "metadata": {"name": settings.namespace, "labels": {key: value}},
                },
                child_options(self, opts),
            )
        for addon in addons:
            release = addon_release(
                addon, settings, istio_version, istio.await_releases, extra_alerts
            )
            if addon == "grafana":
                password = random.RandomPassword(
                    f"{name}-grafana-admin",
                    length=24,
                    special=False,
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.grafana_password = pulumi.Output.secret(password.result)
                values = {**release.values, "adminPassword": self.grafana_password}
                release = dataclasses.replace(release, values=values)
            register_release(f"{name}-{addon}", release, child_options(self, opts, [namespace]))
        self.register_outputs({"addons": addons})
