"""The plug-in CA: X.509 checks, `istio-mesh:ca` validation, the `cacerts` builders (no
Pulumi), and the components under mocks, whose TLS provider makes real certificates
(mesh/tls_mock.py): the chain in the `cacerts` Secret is verified here as istiod would."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components import pki
from components.ca import (
    CA_KEY_USAGES,
    CA_OUTPUTS,
    CertificateAuthorityArgs,
    IstioCaCertsArgs,
    ca_alert_rules,
    cacerts_data,
    cert_chain,
    given_intermediate,
    renewal_days,
    root_not_after,
)
from components.config import CA_KEY_COMMAND, CaIntermediate, CaSettings, parse_config
from components.errors import ConfigError
from components.observability import alerting_rules
from mesh.program import (
    PROJECT_DIR,
    ProgramRun,
    Registered,
    is_wire_secret,
    load_stack_file,
    run_program,
    unwrap_secret,
)
from mesh.render import write_render
from mesh.tls_mock import MOCK_CLOCK
from tests.conftest import mesh_command, run_config
from tests.pki_helpers import DAY, NOW, issue, key_pem, new_key, plugin_ca

DEV_CA = PROJECT_DIR / "tests" / "fixtures" / "stacks" / "Pulumi.dev-ca.yaml"
SECRET_TYPE = "kubernetes:core/v1:Secret"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CA_SECRET = ("istio-mesh:ca",)
CACERTS_FILES = {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"}


def problems(raw: dict[str, Any], secret_keys: tuple[str, ...] | None = CA_SECRET) -> list[str]:
    """The config problems of `raw` as `path: message` lines; [] when it is valid."""
    try:
        parse_config(raw, secret_keys=secret_keys)
    except ConfigError as error:
        return [f"{p.path}: {p.message}" for p in error.problems]
    return []


# -- pki: what each PEM check refuses ------------------------------------------------


def test_a_certificate_field_refuses_a_private_key_by_name() -> None:
    with pytest.raises(ValueError, match="holds a private key"):
        pki.load_certificates(key_pem(new_key()))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not pem", "is not PEM text"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PUBLIC KEY block"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no X.509"),
    ],
)
def test_a_certificate_field_refuses_what_is_not_a_certificate(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        pki.load_certificates(text)


def test_a_bundle_keeps_its_certificates_in_order() -> None:
    first, second = issue("first"), issue("second")
    loaded = pki.load_certificates(first.pem + second.pem)
    assert [c.serial_number for c in loaded] == [
        first.certificate.serial_number,
        second.certificate.serial_number,
    ]


def test_a_key_field_refuses_encrypted_keys_certificates_and_two_keys() -> None:
    key = new_key()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    with pytest.raises(ValueError, match="is encrypted"):
        pki.load_private_key(encrypted)
    with pytest.raises(ValueError, match="must be one PEM private key"):
        pki.load_private_key(issue("x").pem)
    with pytest.raises(ValueError, match="must be one PEM private key"):
        pki.load_private_key(key_pem(key) + key_pem(new_key()))
    assert pki.same_public_key(issue("x", key=key).certificate, pki.load_private_key(key_pem(key)))


def test_is_ca_needs_the_ca_flag_and_cert_signing() -> None:
    assert pki.is_ca(issue("ca").certificate)
    assert not pki.is_ca(issue("leaf", ca=False).certificate)
    assert not pki.is_ca(issue("no-signing", cert_sign=False).certificate)


def test_a_chain_must_lead_to_one_of_the_roots() -> None:
    root, other = issue("root"), issue("other")
    middle = issue("middle", root)
    intermediate = issue("intermediate", middle)
    chain = [intermediate.certificate, middle.certificate]
    assert pki.chain_problem(chain, [other.certificate, root.certificate]) is None
    assert pki.chain_problem(chain, [other.certificate]) == (
        "is not signed by the root (`ca.root.certificate`)"
    )
    upside_down = [middle.certificate, intermediate.certificate]
    assert pki.chain_problem(upside_down, [root.certificate]) == (
        "certificate 1 is not signed by certificate 2 after it"
    )


def test_other_key_types_are_judged_not_crashed_on() -> None:
    """An Ed25519 root is a root (istiod's Go verifies it); an Ed25519 key cannot sign
    for istiod's CA, and a DSA one neither: refused with a message."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ed root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    assert pki.is_ca(root) and pki.issued_by(root, root)
    assert not pki.issued_by(root, issue("ec").certificate)
    for other in (key, dsa.generate_private_key(2048)):
        pem = other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with pytest.raises(ValueError, match="must be an RSA or ECDSA key"):
            pki.load_private_key(pem)


def test_validity_reports_expired_and_not_yet_valid() -> None:
    expired = issue("old", not_before=NOW - 10 * DAY, not_after=NOW - DAY).certificate
    early = issue("early", not_before=NOW + DAY, not_after=NOW + 10 * DAY).certificate
    assert (pki.validity_problem(expired, NOW) or "").startswith("expired on ")
    assert (pki.validity_problem(early, NOW) or "").startswith("is not valid before ")
    assert pki.validity_problem(issue("now").certificate, NOW) is None


def test_rfc3339_is_utc_to_the_second() -> None:
    moment = datetime.datetime(2027, 3, 4, 5, 6, 7, 890, tzinfo=datetime.timezone(DAY / 24))
    assert pki.rfc3339(moment) == "2027-03-04T04:06:07Z"


# -- cacerts builders -------------------------------------------------------------------


def test_cacerts_holds_the_four_files_istiod_reads() -> None:
    data = cacerts_data("ca", "key", "root", "chain")
    assert data == {
        "ca-cert.pem": "ca",
        "ca-key.pem": "key",
        "root-cert.pem": "root",
        "cert-chain.pem": "chain",
    }


def test_the_chain_ends_in_the_root_that_signed_it_not_the_whole_bundle() -> None:
    old_root, new_root = issue("old root"), issue("new root")
    intermediate = issue("intermediate", new_root)
    chain = pki.load_certificates(cert_chain(intermediate.pem, old_root.pem + new_root.pem))
    assert [c.subject for c in chain] == [
        intermediate.certificate.subject,
        new_root.certificate.subject,
    ]
    with pytest.raises(ValueError, match="not signed by any certificate of the root bundle"):
        cert_chain(intermediate.pem, old_root.pem)


def test_a_root_bundle_expires_when_its_first_root_does() -> None:
    soon = issue("soon", not_after=NOW + 40 * DAY)
    later = issue("later", not_after=NOW + 4000 * DAY)
    assert root_not_after(later.pem + soon.pem) == pki.not_after(soon.certificate)


@pytest.mark.parametrize(("validity", "renewal"), [(365, 30), (60, 30), (40, 20), (1, 0)])
def test_a_short_intermediate_is_renewed_in_its_second_half(validity: int, renewal: int) -> None:
    assert renewal_days(validity) == renewal


def test_the_alerts_use_istiods_ca_expiry_metrics() -> None:
    rules = {rule["alert"]: rule for rule in ca_alert_rules()}
    intermediate = rules["IstioIntermediateCaExpiringSoon"]["expr"]
    # istiod's `security/pkg/server/ca/monitoring.go`: expiry of cert-chain.pem's first
    # certificate (the intermediate) and of root-cert.pem's first root, Unix seconds.
    assert intermediate.startswith("(citadel_server_cert_chain_expiry_timestamp - time())")
    assert intermediate.endswith("< 30 * 86400")
    assert "citadel_server_root_cert_expiry_timestamp" in rules["IstioRootCaExpiringSoon"]["expr"]
    settings = parse_config({}).observability
    names = [r["alert"] for r in alerting_rules(settings, ca_alert_rules())["groups"][0]["rules"]]
    assert names[-2:] == list(rules) and len(names) == 5


# -- istio-mesh:ca validation ---------------------------------------------------------------


def test_the_default_is_istiods_own_ca() -> None:
    ca = parse_config({}).ca
    assert (ca.mode, ca.root, ca.intermediate) == ("istiod", None, None)


def test_a_given_root_and_intermediate_pass() -> None:
    root = issue("root")
    intermediate = issue("intermediate", root)
    assert problems({"ca": plugin_ca(root, intermediate)}) == []


def test_an_intermediate_under_a_second_intermediate_passes_with_its_chain() -> None:
    root = issue("root")
    middle = issue("middle", root)
    intermediate = issue("intermediate", middle)
    ca = plugin_ca(root, intermediate)
    ca["intermediate"]["certificate"] = intermediate.pem + middle.pem  # type: ignore[index]
    assert problems({"ca": ca}) == []


def test_a_root_bundle_during_a_rotation_passes() -> None:
    old_root, new_root = issue("old"), issue("new")
    ca = plugin_ca(new_root, issue("intermediate", old_root))
    ca["root"] = {"certificate": old_root.pem + new_root.pem}
    assert problems({"ca": ca}) == []


ROOT = issue("root")
INTERMEDIATE = issue("intermediate", ROOT)

BAD_CA: list[tuple[str, dict[str, Any], str]] = [
    (
        "root missing",
        {"mode": "plugin"},
        "istio-mesh:ca.root: mode plugin needs a root",
    ),
    (
        "root given in istiod mode",
        {"root": {"generate": True}},
        "istio-mesh:ca.root: applies to mode: plugin only",
    ),
    (
        "generate and certificate",
        {"mode": "plugin", "root": {"generate": True, "certificate": ROOT.pem}},
        "istio-mesh:ca.root: either generate: true (dev) or certificate: <PEM> (prod)",
    ),
    (
        "validityDays of a given root",
        {**plugin_ca(ROOT, INTERMEDIATE), "root": {"certificate": ROOT.pem, "validityDays": 9}},
        "istio-mesh:ca.root: validityDays applies to a generated root only",
    ),
    (
        "a key as the root",
        {"mode": "plugin", "root": {"certificate": ROOT.key_pem}},
        "istio-mesh:ca.root.certificate: holds a private key",
    ),
    (
        "a leaf as the root",
        {**plugin_ca(ROOT, INTERMEDIATE), "root": {"certificate": issue("leaf", ca=False).pem}},
        "istio-mesh:ca.root.certificate: certificate 1 of 1 is not a CA certificate",
    ),
    (
        "a root that is not self-signed",
        {**plugin_ca(ROOT, INTERMEDIATE), "root": {"certificate": ROOT.pem + INTERMEDIATE.pem}},
        "istio-mesh:ca.root.certificate: certificate 2 of 2 is not self-signed",
    ),
    (
        "an expired root",
        {
            **plugin_ca(ROOT, INTERMEDIATE),
            "root": {"certificate": issue("old", not_after=NOW - DAY).pem},
        },
        "istio-mesh:ca.root.certificate: certificate 1 of 1 expired on ",
    ),
    (
        "an intermediate of another root",
        plugin_ca(ROOT, issue("stray", issue("other root"))),
        "istio-mesh:ca.intermediate.certificate: is not signed by the root",
    ),
    (
        "an expired intermediate",
        plugin_ca(ROOT, issue("old", ROOT, not_after=NOW - DAY)),
        "istio-mesh:ca.intermediate.certificate: the certificate expired on ",
    ),
    (
        "a leaf as the intermediate",
        plugin_ca(ROOT, issue("leaf", ROOT, ca=False)),
        "istio-mesh:ca.intermediate.certificate: the certificate is not a CA certificate",
    ),
    (
        "another key",
        plugin_ca(ROOT, INTERMEDIATE, key=key_pem(new_key())),
        "istio-mesh:ca.intermediate.key: is not the key of intermediate.certificate",
    ),
    (
        "no key",
        {**plugin_ca(ROOT, INTERMEDIATE), "intermediate": {"certificate": INTERMEDIATE.pem}},
        f"istio-mesh:ca.intermediate.key: missing: set it as a secret: {CA_KEY_COMMAND}",
    ),
    (
        "a key read from the stack file, still encrypted",
        plugin_ca(ROOT, INTERMEDIATE, key={"secure": "v1:abc"}),  # type: ignore[arg-type]
        "istio-mesh:ca.intermediate.key: is encrypted (`secure:`)",
    ),
    (
        "no intermediate with a given root",
        {"mode": "plugin", "root": {"certificate": ROOT.pem}},
        "istio-mesh:ca.intermediate: a given root needs a given intermediate",
    ),
    (
        "an intermediate with a generated root",
        {**plugin_ca(ROOT, INTERMEDIATE), "root": {"generate": True}},
        "istio-mesh:ca.intermediate: a generated root signs a generated intermediate",
    ),
    (
        "intermediateValidityDays of a given intermediate",
        {**plugin_ca(ROOT, INTERMEDIATE), "intermediateValidityDays": 30},
        "istio-mesh:ca.intermediateValidityDays: applies to a generated intermediate only",
    ),
    (
        "an intermediate outliving its generated root",
        {
            "mode": "plugin",
            "root": {"generate": True, "validityDays": 100},
            "intermediateValidityDays": 365,
        },
        "istio-mesh:ca.intermediateValidityDays: 365 days outlive the root (100 days)",
    ),
    (
        "an unknown mode",
        {"mode": "vault"},
        "istio-mesh:ca.mode: Input should be 'istiod' or 'plugin'",
    ),
]


@pytest.mark.parametrize(("case", "ca", "expected"), BAD_CA, ids=[case for case, _, _ in BAD_CA])
def test_a_bad_ca_config_is_one_problem_at_its_path(
    case: str, ca: dict[str, Any], expected: str
) -> None:
    found = problems({"ca": ca})
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_a_plain_text_key_is_refused_and_the_fix_named() -> None:
    """The CLI lists `istio-mesh:ca` among the secret keys when any value under it is
    `secure:`; a key without it was written into the stack file in plain text."""
    found = problems({"ca": plugin_ca(ROOT, INTERMEDIATE)}, secret_keys=())
    assert found == [
        "istio-mesh:ca.intermediate.key: is plain text in the stack file: remove it and set "
        f"it as a secret: {CA_KEY_COMMAND}"
    ]
    assert problems({"ca": plugin_ca(ROOT, INTERMEDIATE)}, secret_keys=None) == []


def test_no_message_quotes_the_key() -> None:
    body = INTERMEDIATE.key_pem.splitlines()[1]
    cases = [
        plugin_ca(ROOT, INTERMEDIATE, key=INTERMEDIATE.key_pem[:-40]),
        plugin_ca(ROOT, INTERMEDIATE, key=INTERMEDIATE.key_pem + INTERMEDIATE.key_pem),
        {**plugin_ca(ROOT, INTERMEDIATE), "root": {"certificate": INTERMEDIATE.key_pem}},
        {**plugin_ca(ROOT, INTERMEDIATE), "unknown": INTERMEDIATE.key_pem},
    ]
    for ca in cases:
        with pytest.raises(ConfigError) as raised:
            parse_config({"ca": ca}, secret_keys=())
        assert body not in str(raised.value) and "PRIVATE KEY-----" not in str(raised.value)
        assert body not in repr(raised.value.__context__)


def test_trust_domain_aliases_reach_the_mesh_config() -> None:
    from components.control_plane import mesh_config

    istio = parse_config({"istio": {"trustDomainAliases": ["old.example.com"]}}).istio
    assert mesh_config(istio)["trustDomainAliases"] == ["old.example.com"]
    assert "trustDomainAliases" not in mesh_config(parse_config({}).istio)
    assert problems({"istio": {"trustDomainAliases": ["cluster.local"]}}) == [
        "istio-mesh:istio: trustDomainAliases lists the trust domain itself (cluster.local)"
    ]
    assert problems({"istio": {"trustDomainAliases": ["Old"]}})[0].startswith(
        "istio-mesh:istio.trustDomainAliases: 'Old' is not a SPIFFE trust domain"
    )


# -- the components under mocks ----------------------------------------------------------------


def cacerts(run: ProgramRun) -> Registered:
    (secret,) = [r for r in run.of_type(SECRET_TYPE) if r.props["metadata"]["name"] == "cacerts"]
    return secret


@pytest.fixture(scope="module")
def dev_ca() -> ProgramRun:
    return run_program("dev-ca", load_stack_file(DEV_CA))


def test_the_cacerts_secret_is_istio_systems_and_a_secret(dev_ca: ProgramRun) -> None:
    secret = cacerts(dev_ca)
    assert secret.props["metadata"] == {"name": "cacerts", "namespace": "istio-system"}
    assert is_wire_secret(secret.props["stringData"])
    assert set(unwrap_secret(secret.props["stringData"])) == CACERTS_FILES


def test_the_generated_chain_verifies_as_istiod_verifies_it(dev_ca: ProgramRun) -> None:
    files = unwrap_secret(cacerts(dev_ca).props["stringData"])
    (root,) = pki.load_certificates(files["root-cert.pem"])
    (intermediate,) = pki.load_certificates(files["ca-cert.pem"])
    chain = pki.load_certificates(files["cert-chain.pem"])
    # cert-chain.pem: the intermediate, then the root it chains to, and nothing else.
    assert chain == [intermediate, root]
    assert pki.issued_by(intermediate, root) and pki.issued_by(root, root)
    assert pki.same_public_key(intermediate, pki.load_private_key(files["ca-key.pem"]))
    assert pki.is_ca(root) and pki.is_ca(intermediate)
    constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.path_length == 0
    usage = intermediate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (True, True, True)
    assert intermediate.not_valid_before_utc == MOCK_CLOCK
    assert intermediate.not_valid_after_utc - MOCK_CLOCK == 365 * DAY
    assert root.not_valid_after_utc - MOCK_CLOCK == 3650 * DAY


def test_the_tls_resources_ask_for_ca_certificates(dev_ca: ProgramRun) -> None:
    by_name = {r.name: r for r in dev_ca.resources if r.type.startswith("tls:")}
    assert set(by_name) == {
        "ca-root-key",
        "ca-root",
        "ca-intermediate-key",
        "ca-intermediate-request",
        "ca-intermediate-certificate",
    }
    # Re-issued by the `pulumi up` after the expiry alert fires, not sooner.
    assert by_name["ca-intermediate-certificate"].props["earlyRenewalHours"] == 30 * 24
    for name in ("ca-root", "ca-intermediate-certificate"):
        assert by_name[name].props["isCaCertificate"] is True
        assert by_name[name].props["allowedUses"] == CA_KEY_USAGES
        # istiod names its issuer by key ID in the certificates it signs.
        assert by_name[name].props["setSubjectKeyId"] is True
    assert by_name["ca-intermediate-certificate"].props["maxPathLength"] == 0
    # Keys are secrets on the wire, as the engine keeps them.
    assert is_wire_secret(by_name["ca-root"].props["privateKeyPem"])
    assert is_wire_secret(by_name["ca-intermediate-certificate"].props["caPrivateKeyPem"])


def test_every_istiod_waits_for_cacerts_which_waits_for_istio_system(dev_ca: ProgramRun) -> None:
    secret = cacerts(dev_ca)
    namespace = next(
        r.urn
        for r in dev_ca.of_type("kubernetes:core/v1:Namespace")
        if r.props["metadata"]["name"] == "istio-system"
    )
    assert namespace in secret.depends_on
    istiods = [r for r in dev_ca.of_type(RELEASE_TYPE) if r.props["chart"] == "istiod"]
    assert len(istiods) == 2
    assert all(secret.urn in release.depends_on for release in istiods)
    assert secret.provider is not None and secret.provider.startswith(
        "urn:pulumi:dev-ca::istio-mesh::istio-mesh:index:IstioMesh$pulumi:providers:kubernetes::"
        "kubernetes"
    )


def test_expiry_outputs_are_plain_rfc3339_dates_of_the_certificates(dev_ca: ProgramRun) -> None:
    files = unwrap_secret(cacerts(dev_ca).props["stringData"])
    root = pki.load_certificates(files["root-cert.pem"])[0]
    intermediate = pki.load_certificates(files["ca-cert.pem"])[0]
    assert {name: dev_ca.outputs[name] for name in CA_OUTPUTS} == {
        "caRootNotAfter": pki.not_after(root),
        "caIntermediateNotAfter": pki.not_after(intermediate),
    }


def test_the_ca_alerts_join_prometheus_only_with_a_plugin_ca(dev_ca: ProgramRun) -> None:
    def alerts(run: ProgramRun) -> list[str]:
        (prometheus,) = [r for r in run.of_type(RELEASE_TYPE) if r.props["chart"] == "prometheus"]
        rules = prometheus.props["values"]["serverFiles"]["alerting_rules.yml"]
        return [rule["alert"] for rule in rules["groups"][0]["rules"]]

    assert "IstioIntermediateCaExpiringSoon" in alerts(dev_ca)
    dev = run_program("dev", load_stack_file(PROJECT_DIR / "Pulumi.dev.yaml"))
    assert "IstioIntermediateCaExpiringSoon" not in alerts(dev)
    assert not [r for r in dev.resources if r.type.startswith("tls:")]
    assert not [r for r in dev.of_type(SECRET_TYPE) if r.props["metadata"]["name"] == "cacerts"]
    assert not set(CA_OUTPUTS) & set(dev.outputs)


def test_a_given_intermediate_goes_into_cacerts_with_its_key_a_secret() -> None:
    root = issue("root")
    intermediate = issue("intermediate", root)
    run = run_config(
        {"istio": {"revisions": [{"version": "1.30.5"}]}, "ca": plugin_ca(root, intermediate)},
        secret_keys=CA_SECRET,
    )
    assert not [r for r in run.resources if r.type.startswith("tls:")]
    secret = cacerts(run)
    assert is_wire_secret(secret.props["stringData"])
    assert unwrap_secret(secret.props["stringData"]) == {
        "ca-cert.pem": intermediate.pem,
        "ca-key.pem": intermediate.key_pem,
        "root-cert.pem": root.pem,
        "cert-chain.pem": intermediate.pem + root.pem,
    }
    assert run.outputs["caIntermediateNotAfter"] == pki.not_after(intermediate.certificate)
    assert run.outputs["caRootNotAfter"] == pki.not_after(root.certificate)
    text = json.dumps([r.props for r in run.resources]) + json.dumps(run.outputs)
    # The key's text appears once: inside the Secret's wrapped data.
    body = intermediate.key_pem.splitlines()[1]
    assert text.count(body) == 1


def test_a_protected_mesh_protects_its_root_and_cacerts() -> None:
    """Deleting `cacerts` makes the next istiod start sign with a root of its own;
    replacing the generated root's key leaves every proxy trusting a dead root."""
    run = run_config(
        {
            "istio": {"revisions": [{"version": "1.30.5"}], "protect": True},
            "kubernetes:context": "kind-test",
            "ca": {"mode": "plugin", "root": {"generate": True}},
        }
    )
    protected = {r.name for r in run.resources if r.protect and r.retain_on_delete}
    assert {"ca-root-key", "ca-root", "ca-intermediate-cacerts"} <= protected
    assert "ca-intermediate-key" not in protected  # an intermediate is meant to be replaced


def test_a_plain_text_key_stops_the_program_before_anything_is_registered() -> None:
    registered: list[Registered] = []
    with pytest.raises(ConfigError, match="is plain text in the stack file"):
        run_config(
            {"ca": plugin_ca(ROOT, INTERMEDIATE)},
            registered=registered,
        )
    assert registered == []


def test_render_writes_no_private_key(tmp_path: Path) -> None:
    root = issue("root")
    intermediate = issue("intermediate", root)
    given = run_config({"ca": plugin_ca(root, intermediate)}, secret_keys=CA_SECRET)
    write_render(given, tmp_path / "given")
    result = mesh_command("render", "--stack-file", str(DEV_CA), "--out", str(tmp_path / "dev"))
    assert result.returncode == 0, result.stderr
    body = intermediate.key_pem.splitlines()[1]
    written = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert len(written) > 20
    assert [p for p, text in written.items() if "PRIVATE KEY" in text or body in text] == []
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    cacerts_file = tmp_path / "dev" / "manifests" / "istio-system" / "secret-cacerts.yaml"
    assert "stringData: '[secret]'" in cacerts_file.read_text()
    exported = json.loads((tmp_path / "dev" / "stack.json").read_text())
    outputs = exported["deployment"]["resources"][0]["outputs"]
    assert outputs["caIntermediateNotAfter"] == "2027-01-01T00:00:00Z"


def test_the_policy_pack_passes_the_plugin_ca_stack() -> None:
    result = mesh_command(
        "check",
        "--stack-file",
        str(DEV_CA),
        "--policy-config",
        str(PROJECT_DIR / "policies" / "config" / "dev.json"),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    mandatory = [v for v in json.loads(result.stdout) if v["enforcement"] == "mandatory"]
    assert mandatory == []


def test_the_mock_engine_keeps_a_providers_secret_outputs_secret(tmp_path: Path) -> None:
    """pulumi-tls asks the engine (`additionalSecretOutputs`) to keep its keys secret;
    the harness does what the engine does, or the key would be exported in plain text."""
    program = tmp_path / "program" / "__main__.py"
    program.parent.mkdir()
    program.write_text(
        "import pulumi, pulumi_tls as tls\n"
        'key = tls.PrivateKey("k", algorithm="ECDSA", ecdsa_curve="P256")\n'
        'pulumi.export("key", key.private_key_pem)\n'
        'pulumi.export("public", key.public_key_pem)\n'
    )
    run = run_program("dev", {}, program=program)
    assert is_wire_secret(run.outputs["key"])
    assert "EC PRIVATE KEY" in run.outputs["key"]["value"]
    assert run.outputs["public"].startswith("-----BEGIN PUBLIC KEY-----")


def test_a_gated_stack_exports_the_expiry_dates_once_the_gate_opens() -> None:
    """prod declares its mesh inside the promotion gate's callback: the CA outputs are
    named up front and resolve from there."""
    from tests.conftest import stack_run

    root = issue("root")
    intermediate = issue("intermediate", root)
    config = load_stack_file(PROJECT_DIR / "Pulumi.prod.yaml")
    config["istio-mesh:ca"] = json.dumps(plugin_ca(root, intermediate))
    run = run_program(
        "prod", config, {"dev": stack_run("dev").outputs}, secret_keys=["istio-mesh:ca"]
    )
    assert run.outputs["caIntermediateNotAfter"] == pki.not_after(intermediate.certificate)
    assert run.outputs["caRootNotAfter"] == pki.not_after(root.certificate)
    assert is_wire_secret(cacerts(run).props["stringData"])


def test_a_given_chain_signs_with_its_first_certificate() -> None:
    root = issue("root")
    middle = issue("middle", root, not_after=NOW + 900 * DAY)
    intermediate = issue("intermediate", middle, not_after=NOW + 300 * DAY)
    given = given_intermediate(root.pem, CaIntermediate(certificate=intermediate.pem + middle.pem))
    assert given.ca_cert == intermediate.pem
    assert given.not_after == pki.not_after(intermediate.certificate)
    assert given.chain == intermediate.pem + middle.pem + root.pem


def test_a_chain_names_one_root_even_when_a_reissued_root_also_signed_it() -> None:
    # A root re-issued with the same key and subject (a longer validity) verifies the
    # same intermediates: the chain still ends in one root.
    key = new_key()
    root, reissued = issue("root", key=key), issue("root", key=key, not_after=NOW + 900 * DAY)
    intermediate = issue("intermediate", root)
    chain = pki.load_certificates(cert_chain(intermediate.pem, root.pem + reissued.pem))
    assert len(chain) == 2


def test_a_root_is_protected_only_when_asked() -> None:
    settings = CaSettings(mode="plugin", root={"generate": True})
    assert CertificateAuthorityArgs(settings).protect is False


def test_the_ca_components_say_when_their_certificates_expire(dev_ca: ProgramRun) -> None:
    outputs = {
        urn.rpartition("::")[2]: value
        for urn, value in dev_ca.component_outputs.items()
        if "istio-mesh:ca:" in urn
    }
    assert set(outputs) == {"ca", "ca-intermediate"}
    for name, registered in outputs.items():
        assert set(registered) == {"notAfter"}, name
    assert outputs["ca"]["notAfter"] == dev_ca.outputs["caRootNotAfter"]
    assert outputs["ca-intermediate"]["notAfter"] == dev_ca.outputs["caIntermediateNotAfter"]


def test_the_ca_alerts_are_warnings_with_a_summary_that_names_the_runbook() -> None:
    for rule in ca_alert_rules():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert rule["for"] == "1h"
        assert rule["labels"] == {"severity": "warning"}
        assert set(rule["annotations"]) == {"summary"}
        assert "docs/RUNBOOKS.md" in rule["annotations"]["summary"]


def test_the_cacerts_secret_is_protected_only_when_asked() -> None:
    settings = CaSettings(mode="plugin", root={"generate": True})
    assert IstioCaCertsArgs(settings, root_cert="").protect is False
