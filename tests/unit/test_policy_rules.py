"""The policy pack's rules (policy/rules.py) and their pulumi-policy glue (policy/policies.py).

The rules are plain functions of a Release's inputs; the glue is called here
the way pulumi-policy calls it (ResourceValidationArgs, a report callback).
The committed stacks, run through the program under mocks, must pass every
rule; tests/e2e/test_policy.py runs the pack on the real engine.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.deserialize import deserialize_properties

from model.identity import NAMESPACE_TYPE, RELEASE_CHAIN, RELEASE_TYPE, urn
from policy import policies, rules
from tests.conftest import ROOT, TEST_SECRETS, RunProgram

URN = urn("{stack}", RELEASE_CHAIN, RELEASE_TYPE, "{name}")


def facts(root: Path = ROOT, stack: str = "dev", charts_dir: str = "charts", environment: str | None = None) -> rules.StackFacts:
    return rules.StackFacts(root=root, project="astrago-deploy", stack=stack, environment=environment or stack,
                            charts_dir=charts_dir, secret_paths={"astrago": frozenset({"mariadb.password"})})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder the pack reads (Pulumi.yaml, catalog, our charts), as the engine's working directory."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(ROOT / "catalog", root / "catalog")
    shutil.copytree(ROOT / "charts" / "own", root / "charts" / "own")
    monkeypatch.chdir(root)
    rules.load_facts.cache_clear()
    return root


def write_stack(root: Path, stack: str, config: dict[str, Any]) -> None:
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": {f"astrago-deploy:{k}": v for k, v in config.items()}}))


# --- stack facts ---------------------------------------------------------------------------------

def test_the_stack_and_project_come_from_the_urn() -> None:
    assert rules.parse_urn(URN.format(stack="site-a", name="x")) == ("site-a", "astrago-deploy")
    with pytest.raises(ValueError, match="not a resource URN"):
        rules.parse_urn("astrago-applications-astrago-release")


def test_prod_is_the_prod_stack_or_a_stack_that_inherits_it(project: Path) -> None:
    write_stack(project, "prod", {"chartsDir": "bundle"})
    write_stack(project, "site-a", {"inherits": "prod"})
    write_stack(project, "site-b", {"inherits": "stage", "chartsDir": "site-charts"})
    write_stack(project, "stage", {})
    prod, site_a, site_b = (rules.load_facts(project, "astrago-deploy", s) for s in ("prod", "site-a", "site-b"))
    assert prod.is_prod and site_a.is_prod and not site_b.is_prod
    # chartsDir is the stack's own, else inherited, else charts.
    assert (prod.charts_dir, site_a.charts_dir, site_b.charts_dir) == ("bundle", "bundle", "site-charts")
    # A stack without a stack file has no config: not prod unless named so.
    bare = rules.load_facts(project, "astrago-deploy", "scratch")
    assert not bare.is_prod and bare.charts_dir == "charts"
    # The catalog's encrypted paths, per release.
    assert "mariadb.rootPassword" in prod.secret_paths["astrago"]
    assert prod.secret_paths["keycloak"] == frozenset({"auth.adminPassword"})


def test_facts_need_the_project_the_resources_belong_to(project: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="names project 'astrago-deploy', but the resources belong to 'other'"):
        rules.load_facts(project, "other", "dev")
    with pytest.raises(ValueError, match="must run from the project's folder"):
        rules.load_facts(tmp_path, "astrago-deploy", "dev")


# --- rule 1: charts from this repository --------------------------------------------------------

@pytest.mark.parametrize("chart", ["charts/own/astrago", "charts/external/harbor-1.16.2.tgz", f"{ROOT}/charts/own/astrago"])
def test_our_charts_and_locked_archives_are_allowed(chart: str) -> None:
    assert rules.chart_source_problems(chart, None, facts()) == []


def test_archives_come_from_the_stacks_charts_dir() -> None:
    bundle = facts(charts_dir="/srv/bundle/charts")
    assert rules.chart_source_problems("/srv/bundle/charts/external/harbor-1.16.2.tgz", {}, bundle) == []
    assert rules.chart_source_problems("charts/external/harbor-1.16.2.tgz", {}, bundle) == [
        "chart 'charts/external/harbor-1.16.2.tgz' is neither a folder under charts/own/ nor an archive in /srv/bundle/charts/external/"
    ]


@pytest.mark.parametrize(("chart", "repo", "expected"), [
    ("https://charts.example.invalid/harbor-1.16.2.tgz", None, "is fetched from a repository"),
    ("oci://registry.example.invalid/charts/harbor", None, "is fetched from a repository"),
    ("harbor", {"repo": "https://helm.goharbor.io"}, "repositoryOpts.repo 'https://helm.goharbor.io' makes Helm fetch the chart"),
    ("charts/own/../../vendor/astrago", None, "is neither a folder under charts/own/"),
    ("charts/own/astrago/charts/mariadb", None, "is neither a folder under charts/own/"),
    ("charts/external/sub/harbor.tgz", None, "is neither a folder under charts/own/"),
    ("charts/external/harbor", None, "is neither a folder under charts/own/"),
    ("", None, "has no `chart` path"),
])
def test_charts_from_anywhere_else_are_refused(chart: str, repo: dict[str, str] | None, expected: str) -> None:
    problems = rules.chart_source_problems(chart, repo, facts())
    assert any(expected in p for p in problems), problems


# --- rule 2: prod image tags --------------------------------------------------------------------

def test_latest_untagged_and_dev_tags_are_found_in_every_image_shape() -> None:
    values = {
        "core": {"image": {"repository": "astrago/core", "tag": "latest"}},
        "batch": {"image": {"repository": "astrago/batch", "tag": "batch-dev-1a2b3c4"}},
        "sidecar": {"image": "docker.io/library/busybox"},
        "proxy": {"image": "registry.example.invalid:5000/nginx:1.27"},
        "pinned": {"image": "docker.io/library/busybox@sha256:" + "0" * 64},
        "exporter": {"repository": "astrago/exporter", "tag": "LATEST"},
        "agent": {"imageTag": "dev-branch-dev-1"},
        "job": {"image": {"repository": "astrago/job", "tag": "1.2.3"}},
        "chartDefault": {"image": {"repository": "astrago/x"}},
    }
    assert rules.image_tag_problems(values) == [
        "core.image.tag is `latest`; pin a release tag",
        "batch.image.tag is dev build 'batch-dev-1a2b3c4'; prod runs release builds",
        "sidecar.image has no tag, so it pulls `latest`; pin a release tag",
        "exporter.tag is `latest`; pin a release tag",
        "agent.imageTag is dev build 'dev-branch-dev-1'; prod runs release builds",
    ]


def test_disabled_components_are_not_held_against_prod() -> None:
    values = {"experiment": {"enabled": False, "image": {"tag": "experiment-dev-0000000"}},
              "extras": {"enabled": False, "worker": {"image": "busybox:latest"}}}
    assert rules.image_tag_problems(values) == []


def test_our_charts_defaults_count_for_tags_and_limits() -> None:
    values, own = rules.effective_values({"core": {"image": {"tag": "core-prod-8d2e4b1"}}}, "charts/own/astrago", ROOT)
    assert own
    problems = rules.image_tag_problems(values)
    # The defaults the stack did not override are dev builds; the disabled experiment is skipped.
    assert [p.split(" ")[0] for p in problems] == ["batch.image.tag", "monitor.image.tag", "frontend.image.tag"]
    external, own = rules.effective_values({"image": {"tag": "v1"}}, "charts/external/harbor-1.16.2.tgz", ROOT)
    assert not own and external == {"image": {"tag": "v1"}}


# --- rule 3: prod resource limits ---------------------------------------------------------------

def test_every_enabled_workload_of_our_charts_needs_cpu_and_memory_limits() -> None:
    values, _ = rules.effective_values({
        "frontend": {"resources": {"limits": {"memory": ""}}},
        "proxy": {"resources": {"limits": {"cpu": None}}},
        "mariadb": {"resources": "none"},
        "experiment": {"resources": {"limits": {}}},
    }, "charts/own/astrago", ROOT)
    # A null removes the chart's default, as Helm's null does; the disabled experiment is skipped.
    assert rules.limits_problems(values) == [
        "frontend has no memory limit; set frontend.resources.limits.memory",
        "proxy has no cpu limit; set proxy.resources.limits.cpu",
        "mariadb has no cpu or memory limit; set mariadb.resources.limits.cpu",
    ]


def test_a_chart_whose_workload_is_at_the_top_level() -> None:
    values, _ = rules.effective_values({"resources": {"limits": {"cpu": "1"}}}, "charts/own/gpu-process-exporter", ROOT)
    assert rules.limits_problems(values) == []
    assert rules.limits_problems({"image": {"tag": "1"}, "resources": {}}) == [
        "the chart's workload (top level) has no cpu or memory limit; set resources.limits.cpu"
    ]


# --- rule 4: plain secrets ----------------------------------------------------------------------

def test_credential_keys_with_plain_values_are_refused_by_path_only() -> None:
    values = {
        "mariadb": {"password": "from-encrypted-config", "rootPassword": "leaked-1", "passwordSecretKey": "mariadb-password",
                    "existingSecret": "astrago-db"},
        "auth": {"adminPasswd": 1234, "apiToken": ["tok-1"], "tlsSecretName": "astrago-tls", "createSecret": True, "token": ""},
        "s3": {"secretKey": "leaked-2", "accessKey": "AKIA-not-matched"},
        "keycloak": {"clientSecret": None, "secretKeyRef": {"name": "kc", "key": "client-secret"}},
    }
    problems = rules.plain_secret_problems(values, frozenset({"mariadb.password"}))
    assert [p.split(" ")[0] for p in problems] == ["mariadb.rootPassword", "auth.adminPasswd", "auth.apiToken", "s3.secretKey"]
    assert all("holds a credential in plain values" in p for p in problems)
    assert not any(v in " ".join(problems) for v in ("leaked-1", "leaked-2", "1234", "tok-1"))


@pytest.mark.parametrize(("key", "reference"), [
    ("existingSecret", True), ("tlsSecretName", True), ("secretName", True), ("passwordSecretKey", True),
    ("adminPasswordKey", True), ("valueFromSecretRef", True), ("secretKeyRef", True),
    ("secretKey", False), ("password", False), ("adminToken", False), ("secret", False),
])
def test_reference_keys_name_where_a_credential_lives(key: str, reference: bool) -> None:
    assert rules.is_reference_key(key) is reference


# --- the glue, called as pulumi-policy calls it -------------------------------------------------

def validate(check: Any, props: dict[str, Any], stack: str = "dev", name: str = "astrago-applications-astrago-release",
             resource_type: str = RELEASE_TYPE) -> list[tuple[str, str | None]]:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    args = ResourceValidationArgs(resource_type, props, URN.format(stack=stack, name=name), name, opts, None)
    reported: list[tuple[str, str | None]] = []
    check(args, lambda message, urn: reported.append((message, urn)))
    return reported


def test_a_violation_names_the_release_the_resource_and_the_rule(project: Path) -> None:
    props = {"name": "astrago", "chart": "oci://registry.example.invalid/astrago", "values": {}}
    [(message, urn)] = validate(policies.check_chart_source, props)
    assert urn == URN.format(stack="dev", name="astrago-applications-astrago-release")
    assert message.startswith(f"release 'astrago' ({urn}) breaks rule charts-from-this-repo: chart 'oci://")


def test_prod_rules_apply_to_prod_only(project: Path) -> None:
    write_stack(project, "site-a", {"inherits": "prod"})
    write_stack(project, "prod", {})
    props = {"name": "astrago", "chart": "charts/own/astrago", "values": {"frontend": {"resources": {"limits": {"cpu": ""}}}}}
    assert validate(policies.check_prod_image_tags, props, stack="dev") == []
    assert validate(policies.check_prod_limits, props, stack="dev") == []
    for stack in ("prod", "site-a"):
        tags = validate(policies.check_prod_image_tags, props, stack=stack)
        assert len(tags) == 4 and all("breaks rule prod-pinned-image-tags" in m for m, _ in tags)
        [(limits, _)] = validate(policies.check_prod_limits, props, stack=stack)
        assert limits.endswith("breaks rule prod-resource-limits: frontend has no cpu limit; set frontend.resources.limits.cpu")


def test_limits_of_a_third_party_chart_are_not_applicable(project: Path) -> None:
    write_stack(project, "prod", {})
    props = {"name": "harbor", "chart": "charts/external/harbor-1.16.2.tgz", "values": {}}
    with pytest.raises(Exception) as raised:
        validate(policies.check_prod_limits, props, stack="prod", name="astrago-security-harbor-release")
    assert "third-party chart" in getattr(raised.value, "reason", "")


def test_other_resources_are_not_checked(project: Path) -> None:
    props = {"metadata": {"name": "astrago", "annotations": {"password": "x"}}}
    for check in (policies.check_chart_source, policies.check_plain_secrets, policies.check_prod_image_tags, policies.check_prod_limits):
        assert validate(check, props, resource_type=NAMESPACE_TYPE, name="astrago-ns-astrago") == []


def test_catalog_secret_paths_pass_and_others_fail(project: Path) -> None:
    props = {"name": "astrago", "chart": "charts/own/astrago",
             "values": {"mariadb": {"password": TEST_SECRETS["mariadbPassword"], "adminPassword": "plain"}}}
    [(message, _)] = validate(policies.check_plain_secrets, props)
    assert "breaks rule no-plain-secrets: mariadb.adminPassword holds a credential" in message
    assert "plain" not in message.split(": ", 1)[1].split(" holds")[0]


# --- the committed stacks -----------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["local", "dev", "stage", "prod"])
def test_every_committed_stack_passes_every_rule(stack: str, run_program: RunProgram, standin_charts: Path) -> None:
    """What the program registers for each stack (external charts from stand-in archives) breaks no rule;
    prod is checked by the prod rules too."""
    run = run_program(stack)
    releases = run.of_type(RELEASE_TYPE)
    assert releases
    catalog = rules.load_facts.__wrapped__(ROOT, "astrago-deploy", stack).secret_paths
    stack_facts = rules.StackFacts(root=ROOT, project="astrago-deploy", stack=stack, environment=stack,
                                   charts_dir=str(standin_charts), secret_paths=catalog)
    for release in releases:
        # As pulumi-policy hands them to a validation: secret envelopes opened (policy.py, Analyze).
        inputs = deserialize_properties(dict(release.inputs))
        values = rules.plain(inputs["values"])
        assert rules.chart_source_problems(inputs["chart"], inputs.get("repositoryOpts"), stack_facts) == [], release.name
        assert rules.plain_secret_problems(values, catalog.get(inputs["name"], frozenset())) == [], release.name
        if stack == "prod":
            effective, own = rules.effective_values(values, inputs["chart"], ROOT)
            assert rules.image_tag_problems(effective) == [], release.name
            if own:
                assert rules.limits_problems(effective) == [], release.name
