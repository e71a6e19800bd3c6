"""Names and patterns every component derives from: each edge a mistake would cross."""

from __future__ import annotations

import pytest

from components import naming


@pytest.mark.parametrize("name", ["a", "shop", "shop-2", "1st", "a" * 63])
def test_a_dns_label_is_accepted(name: str) -> None:
    assert naming.dns_label(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a" * 64, "shop_1", "shop-", "-shop", "Shop", "shop.x", "shop\n", " shop", "shop "],
)
def test_anything_else_is_not_a_dns_label(name: str) -> None:
    with pytest.raises(ValueError, match="is not a valid Kubernetes name"):
        naming.dns_label(name)


@pytest.mark.parametrize("host", ["a", "example.com", "a-1.b-2.example", "1.2.3"])
def test_dns_subdomains(host: str) -> None:
    assert naming.DNS_SUBDOMAIN.fullmatch(host)


@pytest.mark.parametrize("host", ["", "a..b", ".a", "a.", "shop_1.x", "x.-a", "a.b-", "A.b"])
def test_not_dns_subdomains(host: str) -> None:
    assert not naming.DNS_SUBDOMAIN.fullmatch(host)


@pytest.mark.parametrize("version", ["1.30.0", "1.30.10", "1.31.0-beta.1", "1.31.0-rc.0"])
def test_exact_versions(version: str) -> None:
    assert naming.VERSION_PATTERN.fullmatch(version)


@pytest.mark.parametrize(
    "version", ["1.30", "1.30.0.1", "v1.30.0", "1.30.x", "1.30.0-", "~1.30.0", "1.30.0\n", "^1.30"]
)
def test_not_exact_versions(version: str) -> None:
    assert not naming.VERSION_PATTERN.fullmatch(version)


def test_version_keys_order_numerically_and_ignore_pre_releases() -> None:
    assert naming.version_key("1.31.0-beta.1") == (1, 31, 0)
    assert naming.version_key("1.30.10") == (1, 30, 10)
    assert naming.version_key("1.30.10") > naming.version_key("1.30.9")
    assert naming.version_key("2.0.0") > naming.version_key("1.99.99")


def test_revision_names_are_versions_without_dots() -> None:
    assert naming.revision_name("1.31.0-beta.1") == "1-31-0-beta-1"
    assert naming.istiod_release("1-31-1") == "istiod-1-31-1"
    assert naming.istiod_service("1-31-1") == "istiod-1-31-1"


def test_a_gateway_is_named_after_its_release() -> None:
    assert naming.gateway_release("ingress") == "istio-ingress"
    assert naming.gateway_namespace("ingress") == "istio-ingress"
    assert naming.gateway_selector("ingress") == {"istio": "ingress"}
    assert naming.gateway_service_account("egress") == ("istio-egress", "istio-egress")
    assert naming.gateway_ref("ingress") == "istio-ingress/ingress"


@pytest.mark.parametrize(
    ("dataplane", "revision", "waypoint", "labels"),
    [
        (
            "ambient",
            "stable",
            False,
            {"istio.io/dataplane-mode": "ambient", "istio.io/rev": "stable"},
        ),
        (
            "ambient",
            "canary",
            True,
            {
                "istio.io/dataplane-mode": "ambient",
                "istio.io/rev": "canary",
                "istio.io/use-waypoint": "waypoint",
                "istio.io/ingress-use-waypoint": "true",
            },
        ),
        ("sidecar", "default", False, {"istio-injection": "enabled"}),
        ("sidecar", "stable", False, {"istio.io/rev": "stable"}),
    ],
)
def test_injection_labels_of_a_namespace(
    dataplane: str, revision: str, waypoint: bool, labels: dict[str, str]
) -> None:
    """One label joins a sidecar namespace; ambient ones also name their tag (and their
    waypoint): never istio-injection, which would override istio.io/rev."""
    assert naming.injection_labels(dataplane, revision, waypoint) == labels


def test_names_of_gateway_api_objects() -> None:
    assert naming.version_service("reviews", "v2") == "reviews-v2"
    assert naming.https_listener("shop.example.com") == "https-shop.example.com"
    assert naming.waypoint_service_account("store") == ("store", "waypoint")


def test_resource_names_of_a_catalog() -> None:
    assert naming.catalog_resource_name("shop") == "services-shop"
    assert naming.service_resource_name("shop", "reviews") == "services-shop-reviews"
