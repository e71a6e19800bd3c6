"""Revision tags: objects named after the tag, pointing at one revision's istiod."""

from __future__ import annotations

from components.config import parse_config
from components.control_plane import revision_tag_manifests
from components.revision_tags import tag_service, tag_webhook


def test_a_tag_webhook_is_named_after_the_tag_and_calls_its_revision() -> None:
    webhook = tag_webhook("stable", "1-30-5")
    assert webhook["metadata"]["name"] == "istio-revision-tag-stable"
    assert webhook["metadata"]["labels"]["istio.io/rev"] == "1-30-5"
    assert webhook["metadata"]["labels"]["istio.io/tag"] == "stable"
    services = {hook["clientConfig"]["service"]["name"] for hook in webhook["webhooks"]}
    assert services == {"istiod-1-30-5"}
    namespace_hook = webhook["webhooks"][0]
    assert {"key": "istio.io/rev", "operator": "In", "values": ["stable"]} in namespace_hook[
        "namespaceSelector"
    ]["matchExpressions"]
    # istiod fills the CA bundle in; a value here would fight it on every update.
    assert all("caBundle" not in hook["clientConfig"] for hook in webhook["webhooks"])


def test_only_the_default_tag_serves_istio_injection_enabled() -> None:
    def names(tag: str) -> list[str]:
        return [hook["name"] for hook in tag_webhook(tag, "1-30-5")["webhooks"]]

    assert names("stable") == [
        "rev.namespace.sidecar-injector.istio.io",
        "rev.object.sidecar-injector.istio.io",
    ]
    assert names("default")[2:] == [
        "namespace.sidecar-injector.istio.io",
        "object.sidecar-injector.istio.io",
    ]


def test_moving_a_tag_changes_its_objects_contents_not_their_names() -> None:
    before = {
        "revisions": [{"version": "1.30.5"}, {"version": "1.31.1"}],
        "tags": {"stable": "1-30-5"},
    }
    after = {**before, "tags": {"stable": "1-31-1"}, "defaultRevision": "1-31-1"}
    old = revision_tag_manifests(parse_config({"istio": before}).istio)
    new = revision_tag_manifests(parse_config({"istio": after}).istio)
    assert set(old) == set(new) == {"default", "stable"}
    for tag in old:
        assert [m["metadata"]["name"] for m in old[tag]] == [
            m["metadata"]["name"] for m in new[tag]
        ]
        assert old[tag] != new[tag]
    assert tag_service("stable", "1-31-1")["spec"]["selector"] == {
        "app": "istiod",
        "istio.io/rev": "1-31-1",
    }


def selects(expressions: list[dict[str, object]], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics of matchExpressions."""
    for expression in expressions:
        key, operator = str(expression["key"]), expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def test_a_tags_injector_skips_ambient_namespaces_that_carry_the_tag() -> None:
    """An ambient namespace names its tag (for its waypoint's control plane); without the
    exclusion the tag's injector would put sidecars into its pods (istio/istio#60313)."""
    namespace_hook = tag_webhook("stable", "1-30-5")["webhooks"][0]
    expressions = namespace_hook["namespaceSelector"]["matchExpressions"]
    assert selects(expressions, {"istio.io/rev": "stable"})
    assert not selects(
        expressions, {"istio.io/rev": "stable", "istio.io/dataplane-mode": "ambient"}
    )
    assert not selects(expressions, {"istio.io/rev": "canary"})
