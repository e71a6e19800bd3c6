"""`python -m mesh promote`: on copies of the real stack files, never on the files themselves."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

import mesh.promote
from components.config import parse_config, raw_config_from_strings
from mesh.__main__ import main as mesh_main
from mesh.program import PROJECT_DIR, load_stack_file

REVIEWS = {
    "name": "reviews",
    "namespace": "shop",
    "port": 9080,
    "versions": {"v1": {"weight": 80}, "v2": {"weight": 20}},
}


@pytest.fixture
def stacks(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of Pulumi.dev.yaml and Pulumi.prod.yaml in tmp_path."""
    for stack in ("dev", "prod"):
        shutil.copy(PROJECT_DIR / f"Pulumi.{stack}.yaml", tmp_path)
    return tmp_path / "Pulumi.dev.yaml", tmp_path / "Pulumi.prod.yaml"


def edit(path: Path, change: Callable[[Any], None]) -> None:
    """Change a stack file's `config` mapping, keeping its comments (as a user's edit would)."""
    round_trip = YAML()
    round_trip.indent(mapping=2, sequence=4, offset=2)
    document = round_trip.load(path.read_text())
    change(document["config"])
    with path.open("w") as stream:
        round_trip.dump(document, stream)


def config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["config"]


def move_stable_to_canary(dev: dict[str, Any]) -> None:
    """Dev after step 3 of the canary upgrade: `stable` and the default on 1-31-1."""
    dev["istio-mesh:istio"]["tags"]["stable"] = "1-31-1"
    dev["istio-mesh:istio"]["defaultRevision"] = "1-31-1"


def promote(source: Path, target: Path, *options: str) -> int:
    return mesh.promote.main(["--from-file", str(source), "--to-file", str(target), *options])


def test_prod_takes_the_version_devs_stable_tag_runs(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    edit(dev, move_stable_to_canary)
    before_text, before = prod.read_text(), config(prod)

    assert promote(dev, prod) == 0

    after = config(prod)
    istio = after["istio-mesh:istio"]
    assert istio["revisions"] == [{"version": "1.31.1"}]
    assert istio["tags"] == {"stable": "1-31-1"}  # dev's canary tag is not added
    assert istio["defaultRevision"] == "1-31-1"
    # Prod's own settings stay prod's.
    for key in ("highAvailability", "protect", "outboundTrafficPolicy"):
        assert istio[key] == before["istio-mesh:istio"][key]
    assert set(after) == set(before)  # dev's kubernetes:context and the like stay in dev
    for key in set(before) - {"istio-mesh:istio", "istio-mesh:services"}:
        assert after[key] == before[key], key
    # Services only take dev's route weights; everything else of theirs stays prod's.
    for old, new in zip(
        before.get("istio-mesh:services", []), after.get("istio-mesh:services", []), strict=True
    ):
        assert {k: v for k, v in new.items() if k != "versions"} == {
            k: v for k, v in old.items() if k != "versions"
        }
        assert set(new.get("versions", {})) == set(old.get("versions", {}))
    # Only lines with promoted values changed: comments and layout stay as they were.
    removed = set(before_text.splitlines()) - set(prod.read_text().splitlines())
    assert removed and all(
        re.search(r"version: |stable: |defaultRevision: |weight: ", line) for line in removed
    ), removed
    messages = capsys.readouterr()
    assert "+      stable: 1-31-1" in messages.out
    assert "tag 'canary' (-> 1-31-1) is not defined in prod: not added" in messages.err
    assert "revision 1-30-5 leaves prod" in messages.err
    parse_config(raw_config_from_strings(load_stack_file(prod)))


def test_dry_run_prints_the_diff_and_writes_nothing(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    edit(dev, move_stable_to_canary)
    before = prod.read_bytes()

    assert promote(dev, prod, "--dry-run") == 0

    assert prod.read_bytes() == before
    diff = capsys.readouterr().out
    assert "-      - version: 1.30.5" in diff
    assert "+      - version: 1.31.1" in diff
    assert "+    defaultRevision: 1-31-1" in diff


def test_a_second_promotion_has_nothing_to_do(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    edit(dev, move_stable_to_canary)
    assert promote(dev, prod) == 0
    promoted = prod.read_bytes()
    capsys.readouterr()

    assert promote(dev, prod) == 0

    assert prod.read_bytes() == promoted
    messages = capsys.readouterr()
    assert messages.out == ""
    assert "nothing to promote" in messages.err


def test_a_canary_tag_prod_defines_brings_the_canary_revision(stacks: tuple[Path, Path]) -> None:
    dev, prod = stacks
    edit(prod, lambda prod: prod["istio-mesh:istio"]["tags"].update(canary="1-30-5"))

    assert promote(dev, prod) == 0

    istio = config(prod)["istio-mesh:istio"]
    assert istio["revisions"] == [{"version": "1.30.5"}, {"version": "1.31.1"}]
    assert istio["tags"] == {"stable": "1-30-5", "canary": "1-31-1"}
    # Dev's comment on its canary revision describes dev, not prod.
    assert "the canary" not in prod.read_text()


def test_keep_previous_keeps_the_old_revision_until_the_next_promotion(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    edit(dev, move_stable_to_canary)

    assert promote(dev, prod, "--keep-previous") == 0
    istio = config(prod)["istio-mesh:istio"]
    assert istio["revisions"] == [{"version": "1.30.5"}, {"version": "1.31.1"}]
    assert istio["tags"] == {"stable": "1-31-1"}
    assert "revision 1-30-5 stays in prod" in capsys.readouterr().err

    assert promote(dev, prod) == 0
    assert config(prod)["istio-mesh:istio"]["revisions"] == [{"version": "1.31.1"}]


def test_implicit_tags_and_default_stay_implicit(tmp_path: Path) -> None:
    dev, prod = tmp_path / "Pulumi.dev.yaml", tmp_path / "Pulumi.prod.yaml"
    dev.write_text(
        "config:\n"
        "  istio-mesh:istio:\n"
        "    revisions: [{version: 1.30.5}, {version: 1.31.1}]\n"
        "    defaultRevision: 1-31-1\n"
    )
    prod.write_text("config:\n  istio-mesh:istio:\n    revisions: [{version: 1.30.5}]\n")

    assert promote(dev, prod) == 0

    # The only revision is the default, and `stable` follows the default: nothing to spell out.
    assert prod.read_text() == "config:\n  istio-mesh:istio:\n    revisions: [{version: 1.31.1}]\n"


def test_route_weights_are_promoted_and_nothing_else(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    dev_reviews = {
        **REVIEWS,
        "versions": {"v1": {"weight": 50}, "v2": {"weight": 50}, "v3": {"weight": 0}},
        "faultInjection": {"abort": {"percent": 5, "httpStatus": 503}},
        "timeout": "5s",
    }
    ratings = {**REVIEWS, "name": "ratings", "versions": {"v1": {"weight": 100}}}
    prod_reviews = {**REVIEWS, "timeout": "10s"}
    edit(dev, lambda dev: dev.update({"istio-mesh:services": [dev_reviews, ratings]}))
    edit(prod, lambda prod: prod.update({"istio-mesh:services": [prod_reviews]}))

    assert promote(dev, prod) == 0

    (reviews,) = config(prod)["istio-mesh:services"]
    assert reviews == {**prod_reviews, "versions": {"v1": {"weight": 50}, "v2": {"weight": 50}}}
    err = capsys.readouterr().err
    assert "dev service shop/reviews version v3 is not in prod: not added" in err
    assert "dev service shop/ratings is not in prod: not added" in err


def test_flow_style_weights_keep_their_style(tmp_path: Path) -> None:
    dev, prod = tmp_path / "Pulumi.dev.yaml", tmp_path / "Pulumi.prod.yaml"
    stack = (
        "config:\n"
        "  istio-mesh:namespaces: [{name: shop}]\n"
        "  istio-mesh:services:\n"
        "    - name: reviews\n"
        "      namespace: shop\n"
        "      port: 9080\n"
        "      versions: {v1: {weight: V1}, v2: {weight: V2}}   # COMMENT\n"
    )

    def stack_file(v1: int, v2: int, comment: str) -> str:
        return stack.replace("V1", str(v1)).replace("V2", str(v2)).replace("COMMENT", comment)

    dev.write_text(stack_file(10, 90, "dev"))
    prod.write_text(stack_file(80, 20, "prod: the classic split"))

    assert promote(dev, prod) == 0

    assert prod.read_text() == stack_file(10, 90, "prod: the classic split")


def test_an_invalid_result_is_refused_and_not_written(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    edit(dev, move_stable_to_canary)
    # Prod's namespace names the revision itself, not a tag: the promotion removes it.
    edit(prod, lambda prod: prod["istio-mesh:namespaces"][0].update(revision="1-30-5"))
    before = prod.read_bytes()

    assert promote(dev, prod) == 2

    assert prod.read_bytes() == before
    err = capsys.readouterr().err
    assert "the promoted prod config would be invalid" in err
    assert "istio-mesh:namespaces[0].revision: '1-30-5' is not" in err


def test_weights_that_would_not_sum_to_100_are_refused(
    stacks: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    versions = {"v1": {"weight": 50}, "v2": {"weight": 20}, "v3": {"weight": 30}}
    three_versions = {**REVIEWS, "versions": versions}
    edit(dev, lambda dev: dev.update({"istio-mesh:services": [three_versions]}))
    edit(prod, lambda prod: prod.update({"istio-mesh:services": [REVIEWS]}))
    before = prod.read_bytes()

    # Prod has no v3: v1 and v2 alone would get 70.
    assert promote(dev, prod) == 2

    assert prod.read_bytes() == before
    assert "istio-mesh:services[0].versions: weights must sum to 100, got 70" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("dev_text", "message"),
    [
        (None, "no such file"),
        ("config:\n  istio-mesh:istio: [unclosed\n", "Pulumi.dev.yaml"),
        ("config:\n  istio-mesh:istio: {tags: {stable: 9-9-9}}\n", "istio-mesh:istio.tags.stable"),
    ],
    ids=["missing", "bad-yaml", "invalid-config"],
)
def test_unusable_input_exits_2(
    stacks: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    dev_text: str | None,
    message: str,
) -> None:
    dev, prod = stacks
    if dev_text is None:
        dev.unlink()
    else:
        dev.write_text(dev_text)
    before = prod.read_bytes()

    assert promote(dev, prod) == 2

    assert prod.read_bytes() == before
    assert message in capsys.readouterr().err


def test_stack_names_resolve_to_stack_files_through_the_dispatcher(
    stacks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    dev, prod = stacks
    edit(dev, move_stable_to_canary)
    monkeypatch.setattr(
        mesh.promote, "stack_file_for", lambda stack: dev.parent / f"Pulumi.{stack}.yaml"
    )

    assert mesh_main(["promote", "--from", "dev", "--to", "prod"]) == 0

    assert config(prod)["istio-mesh:istio"]["tags"] == {"stable": "1-31-1"}
    assert mesh_main(["promote", "--from", "prod", "--to", "prod"]) == 2


WRAPPED = """\
config:
  istio-mesh:namespaces: [{name: shop}]
  istio-mesh:services:
    - name: reviews
      namespace: shop
      port: 9080
      versions: {v1: {weight: V1}, v2: {weight: V2}}
      circuitBreaker: {maxConnections: 100, maxPendingRequests: 10,
                       consecutive5xxErrors: 5}
    - name: ratings
      namespace: shop
      port: 9080
      versions: {v1: {weight: R1},
                 v2: {weight: R2}}
"""


def wrapped(v1: int, v2: int, r1: int, r2: int) -> str:
    text = WRAPPED
    for name, value in {"V1": v1, "V2": v2, "R1": r1, "R2": r2}.items():
        text = text.replace(name, str(value))
    return text


def test_a_wrapped_flow_mapping_keeps_its_lines_unless_its_own_values_change(
    tmp_path: Path,
) -> None:
    dev, prod = tmp_path / "Pulumi.dev.yaml", tmp_path / "Pulumi.prod.yaml"
    prod.write_text(wrapped(80, 20, 100, 0))

    # ruamel writes a wrapped flow mapping back on one line; the merge keeps the original.
    dev.write_text(wrapped(50, 50, 100, 0))
    assert promote(dev, prod) == 0
    assert prod.read_text() == wrapped(50, 50, 100, 0)

    # A value inside a wrapped mapping changes: that mapping is rewritten, on one line.
    dev.write_text(wrapped(50, 50, 90, 10))
    assert promote(dev, prod) == 0
    assert prod.read_text() == wrapped(50, 50, 90, 10).replace(
        "{v1: {weight: 90},\n                 v2", "{v1: {weight: 90}, v2"
    )


SHOP_TEAM = "# Owned by the shop team (CODEOWNERS).\n"


def keep_services(stack: Path, services: list[dict[str, Any]], in_file: Path | None) -> None:
    """Make `services` the stack's whole catalog: inline, or in the file `in_file` (listed
    by its absolute path: relative ones resolve against the project directory)."""

    def change(config: Any) -> None:
        config.pop("istio-mesh:services", None)
        config.pop("istio-mesh:serviceFiles", None)
        if in_file is None:
            config["istio-mesh:services"] = services
        else:
            config["istio-mesh:serviceFiles"] = [str(in_file)]

    edit(stack, change)
    if in_file is not None:
        in_file.write_text(SHOP_TEAM + yaml.safe_dump(services, sort_keys=False))


def catalog(stack: Path) -> list[dict[str, Any]]:
    """The stack's services, inline and from its files."""
    listed = config(stack).get("istio-mesh:serviceFiles", [])
    files = [yaml.safe_load(Path(path).read_text()) for path in listed]
    return config(stack).get("istio-mesh:services", []) + [e for entries in files for e in entries]


@pytest.mark.parametrize("dev_in_file", [False, True], ids=["dev-inline", "dev-file"])
@pytest.mark.parametrize("prod_in_file", [False, True], ids=["prod-inline", "prod-file"])
def test_weights_are_promoted_wherever_each_stack_writes_its_services(
    stacks: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dev_in_file: bool,
    prod_in_file: bool,
) -> None:
    dev, prod = stacks
    dev_file, prod_file = tmp_path / "services-dev.yaml", tmp_path / "services-prod.yaml"
    canary = {**REVIEWS, "versions": {"v1": {"weight": 50}, "v2": {"weight": 50}}}
    keep_services(dev, [canary], dev_file if dev_in_file else None)
    keep_services(prod, [{**REVIEWS, "timeout": "10s"}], prod_file if prod_in_file else None)
    dev_before, prod_stack_before = catalog(dev), prod.read_text()

    assert promote(dev, prod) == 0

    assert catalog(prod) == [{**REVIEWS, "timeout": "10s", "versions": canary["versions"]}]
    assert catalog(dev) == dev_before
    diff = capsys.readouterr().out
    assert re.search(r"^- +weight: 80\n\+ +weight: 50$", diff, re.MULTILINE), diff
    if prod_in_file:
        # The weights changed in prod's file, which keeps its comments; the stack file
        # had nothing to change.
        assert prod.read_text() == prod_stack_before
        assert prod_file.read_text().startswith(SHOP_TEAM)
        assert f"--- {prod_file} (prod)" in diff
        assert f"--- {prod.name}" not in diff and f"{prod} (prod)" not in diff


def test_a_promoted_service_file_that_would_be_invalid_writes_nothing(
    stacks: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev, prod = stacks
    dev_file, prod_file = tmp_path / "services-dev.yaml", tmp_path / "services-prod.yaml"
    versions = {"v1": {"weight": 50}, "v2": {"weight": 20}, "v3": {"weight": 30}}
    keep_services(dev, [{**REVIEWS, "versions": versions}], dev_file)
    keep_services(prod, [REVIEWS], prod_file)
    edit(dev, move_stable_to_canary)  # the stack file would change too
    before = prod.read_bytes(), prod_file.read_bytes()

    # Prod has no v3: v1 and v2 alone would get 70.
    assert promote(dev, prod) == 2

    assert (prod.read_bytes(), prod_file.read_bytes()) == before
    err = capsys.readouterr().err
    assert "the promoted prod config would be invalid" in err
    assert (
        f"istio-mesh:serviceFiles[0] {prod_file}[0].versions: weights must sum to 100, got 70"
        in err
    )
