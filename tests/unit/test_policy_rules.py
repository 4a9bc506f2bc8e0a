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

from cli.helm import show_chart, template
from model.identity import NAMESPACE_TYPE, RELEASE_CHAIN, RELEASE_TYPE, urn
from model.images import RuntimeImage, load_runtime_declarations, runtime_images
from model.manifest import parse_manifest
from model.values import is_reference_key
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


# --- rule 2: prod image tags, on rendered objects ------------------------------------------------

def pod(name: str, *images: str, limits: dict[str, str] | None = None) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image, **({"resources": {"limits": limits}} if limits is not None else {})} for i, image in enumerate(images)]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"template": {"spec": {"containers": containers}}}}


def test_latest_untagged_and_dev_tags_are_found_wherever_the_objects_name_images() -> None:
    objects = [
        pod("core", "docker.io/astrago/core:latest", "docker.io/astrago/batch:batch-dev-1a2b3c4", "docker.io/library/busybox",
            "registry.example.invalid:5000/nginx:1.27", "docker.io/library/busybox@sha256:" + "0" * 64),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"agent": "image: quay.io/astrago/agent:agent-dev-1"}},
        {"apiVersion": "example.com/v1", "kind": "Exporter", "metadata": {"name": "x"}, "spec": {"repository": "quay.io/astrago/exporter", "tag": "latest"}},
    ]
    assert rules.image_tag_problems(objects, "astrago") == [
        "Deployment core spec.template.spec.containers[0].image is docker.io/astrago/core:latest: `latest` (or no tag); pin a release tag",
        "Deployment core spec.template.spec.containers[1].image is dev build 'batch-dev-1a2b3c4'; prod runs release builds",
        "Deployment core spec.template.spec.containers[2].image is docker.io/library/busybox:latest: `latest` (or no tag); pin a release tag",
        "ConfigMap cfg data.agent is dev build 'agent-dev-1'; prod runs release builds",
        "Exporter x spec is quay.io/astrago/exporter:latest: `latest` (or no tag); pin a release tag",
    ]


def test_an_image_whose_tag_the_software_fills_in_needs_its_declaration() -> None:
    policy = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
              "spec": {"validator": {"repository": "nvcr.io/nvidia/cloud-native", "image": "gpu-operator-validator"}}}
    [problem] = rules.image_tag_problems([policy], "gpu-operator")
    assert "spec.validator names image nvcr.io/nvidia/cloud-native/gpu-operator-validator" in problem
    declared = (RuntimeImage("nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0", "the operator's version"),)
    assert rules.image_tag_problems([policy], "gpu-operator", declared) == []


# --- rule 3: prod resource limits, on rendered containers ----------------------------------------

def test_every_rendered_container_needs_cpu_and_memory_limits() -> None:
    job = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "exporter", "namespace": "gpu-operator"},
           "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"name": "init", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}],
                                                                  "containers": [{"name": "main", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}}}}
    objects = [pod("ok", "x:1", limits={"cpu": "1", "memory": "1Gi"}), pod("frontend", "x:1", limits={"memory": ""}), pod("bare", "x:1"), job]
    assert rules.limits_problems(objects) == [
        "Deployment frontend spec.template.spec.containers[0] (c0) has no cpu or memory limit; set its resources.limits.cpu in the release's values",
        "Deployment bare spec.template.spec.containers[0] (c0) has no cpu or memory limit; set its resources.limits.cpu in the release's values",
        "CronJob gpu-operator/exporter spec.jobTemplate.spec.template.spec.initContainers[0] (init) has no memory limit; set its resources.limits.memory in the release's values",
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
    assert is_reference_key(key) is reference


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


def test_prod_rules_apply_to_prod_only_and_read_what_helm_renders(project: Path) -> None:
    """The glue renders the Release's chart with its values through the pinned helm: our chart's dev-tag defaults count."""
    write_stack(project, "site-a", {"inherits": "prod"})
    write_stack(project, "prod", {})
    props = {"name": "astrago", "namespace": "astrago", "chart": "charts/own/astrago",
             "values": {"core": {"image": {"tag": "core-prod-8d2e4b1"}}, "frontend": {"resources": {"limits": {"cpu": None}}}}}
    assert validate(policies.check_prod_image_tags, props, stack="dev") == []
    assert validate(policies.check_prod_limits, props, stack="dev") == []
    for stack in ("prod", "site-a"):
        tags = validate(policies.check_prod_image_tags, props, stack=stack)
        assert tags and all("breaks rule prod-pinned-image-tags" in m for m, _ in tags)
        dev_builds = sorted(m.split("is dev build ")[1].split(";")[0] for m, _ in tags)
        # The defaults the stack did not override are dev builds; the disabled experiment renders nothing.
        assert dev_builds == ["'batch-dev-0000000'", "'frontend-dev-0000000'", "'monitor-dev-0000000'"], tags
        [(limits, _)] = validate(policies.check_prod_limits, props, stack=stack)
        assert "breaks rule prod-resource-limits: Deployment astrago-frontend" in limits and "has no cpu limit" in limits, limits


def test_a_release_that_does_not_render_is_a_violation_naming_helms_reason(project: Path) -> None:
    write_stack(project, "prod", {})
    props = {"name": "astrago", "namespace": "astrago", "chart": "charts/own/astrago", "values": {"proxy": {"service": {"nodePort": 80}}}}
    [(message, _)] = validate(policies.check_prod_image_tags, props, stack="prod")
    assert "the release cannot be rendered" in message and "nodePort" in message, message


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
            text = template(inputs["name"], inputs["chart"], inputs["namespace"], yaml.safe_dump(values), 120, cwd=ROOT)
            objects = list(parse_manifest(text).values())
            chart = stack_facts.charts.get(inputs["name"]) or rules.load_facts.__wrapped__(ROOT, "astrago-deploy", stack).charts[inputs["name"]]
            declared = runtime_images(load_runtime_declarations(ROOT), chart, show_chart(inputs["chart"], 60, cwd=ROOT))
            assert rules.image_tag_problems(objects, chart, declared) == [], release.name
            if rules.own_chart(inputs["chart"], ROOT):
                assert rules.limits_problems(objects) == [], release.name
