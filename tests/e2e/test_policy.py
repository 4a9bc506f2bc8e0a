"""The policy pack on the real engine: `preview --policy-pack policy` through our language host.

Each test previews a throwaway stack of a project copy (with policy/ copied
in, so the pack reads the copy's files) and checks the engine's verdict: a
clean local stack passes; each rule stops a preview that breaks it, with a
message naming the release, the resource (URN) and the rule.

What reaches a policy is what the program registers: model/ builds every
chart path itself (charts/own/<name> or <chartsDir>/external/<archive>), so a
repository URL or oci:// chart cannot reach the engine from a stack or the
catalog; rule 1 is shown here on a catalog entry whose path climbs out of
charts/own/ (which model/ accepts), and on URLs in tests/unit/test_policy_rules.py.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from model.identity import RELEASE_CHAIN, RELEASE_TYPE, urn
from tests.support.engine import ROOT, E2EStack, copy_project, dispose, new_stack

# Plain text the secrets rule must refuse without ever printing it.
PLAIN_PASSWORD = "e2e-plain-Zq99"


@pytest.fixture
def policy_project(tmp_path: Path) -> Path:
    """A project copy with the policy pack inside (its virtualenv is the copy's .venv link)."""
    project = copy_project(tmp_path / "project")
    shutil.copytree(ROOT / "policy", project / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.fixture
def stacks() -> Iterator[list[E2EStack]]:
    """Stacks a test made, disposed of afterwards (nothing is deployed: previews only)."""
    made: list[E2EStack] = []
    try:
        yield made
    finally:
        for stack in made:
            dispose(stack)


def preview(stack: E2EStack) -> tuple[bool, str]:
    """(passed, engine output) of `preview --policy-pack policy`, timed."""
    started = time.monotonic()
    try:
        result = stack.stack.preview(policy_packs=[str(stack.project / "policy")])
        passed, output = True, result.stdout + result.stderr
    except auto.errors.CommandError as error:
        passed, output = False, str(error)
    print(f"preview of {stack.name} with the policy pack: {time.monotonic() - started:.1f} s, passed={passed}")
    return passed, output


def violation(output: str, stack: E2EStack, release: str, resource: str, rule: str, detail: str) -> None:
    """Assert the engine printed a violation of rule naming the release, its URN and the detail."""
    expected = f"release {release!r} ({urn(stack.name, RELEASE_CHAIN, RELEASE_TYPE, resource)}) breaks rule {rule}: {detail}"
    assert expected in output, f"missing violation:\n{expected}\nin:\n{output}"


def test_a_clean_local_stack_passes_every_policy(policy_project: Path, engine_env: dict[str, str], stacks: list[E2EStack]) -> None:
    stack = new_stack(policy_project, engine_env, "local", {})
    stacks.append(stack)
    passed, output = preview(stack)
    assert passed, output
    # The engine ran the pack (through the language host's RunPlugin) and lists it as passed.
    assert "astrago-deploy@v1.0.0" in output, output
    assert "breaks rule" not in output


def test_a_plain_password_in_release_values_is_refused(policy_project: Path, engine_env: dict[str, str], stacks: list[E2EStack]) -> None:
    # The program refuses a key the chart does not declare before any policy runs; a key the chart
    # reads without declaring it is listed in the catalog's undeclaredValues, and the pack is what
    # then stops a credential in plain text there.
    catalog = policy_project / "catalog" / "releases.yaml"
    text = catalog.read_text()
    anchor = "    chart: {local: astrago}\n"
    assert anchor in text
    catalog.write_text(text.replace(anchor, anchor + "    undeclaredValues: [mariadb.adminPassword]\n", 1))
    stack = new_stack(policy_project, engine_env, "local", {"releases": {"astrago": {"values": {"mariadb": {"adminPassword": PLAIN_PASSWORD}}}}})
    stacks.append(stack)
    passed, output = preview(stack)
    assert not passed
    violation(output, stack, "astrago", "astrago-applications-astrago-release", "no-plain-secrets", "mariadb.adminPassword holds a credential in plain values")
    assert "mandatory" in output
    # Only the path is named: the value stays out of the output.
    assert PLAIN_PASSWORD not in output
    # The encrypted secrets the catalog maps (mariadb.password, ...) are no violation.
    assert "mariadb.password " not in output and "mariadb.rootPassword" not in output


def test_prod_refuses_latest_and_dev_tags_and_missing_limits(policy_project: Path, engine_env: dict[str, str], stacks: list[E2EStack]) -> None:
    # A stack named prod: a throwaway stack with the local settings, renamed to prod (the copy
    # holds no stack files, so the team's Pulumi.prod.yaml and its passphrase are not involved).
    made = new_stack(policy_project, engine_env, "local", {
        "releases": {"astrago": {"values": {
            "core": {"image": {"tag": "latest"}},
            "frontend": {"resources": {"limits": {"memory": ""}}},
        }}},
    })
    made.pulumi("stack", "rename", "prod")
    assert yaml.safe_load((policy_project / "Pulumi.prod.yaml").read_text())["config"]["astrago-deploy:releases"]["astrago"]
    stack = E2EStack(stack=auto.Stack.select("prod", made.stack.workspace), project=policy_project, env=engine_env)
    stacks.append(stack)
    passed, output = preview(stack)
    assert not passed
    release = "astrago-applications-astrago-release"
    violation(output, stack, "astrago", release, "prod-pinned-image-tags",
              "Deployment astrago-core spec.template.spec.containers[0].image is docker.io/astrago/core:latest: `latest`")
    # The local settings keep the chart's default dev builds: the rule reads what Helm renders, defaults included.
    violation(output, stack, "astrago", release, "prod-pinned-image-tags",
              "Deployment astrago-batch spec.template.spec.containers[0].image is dev build 'batch-dev-0000000'")
    violation(output, stack, "astrago", release, "prod-resource-limits", "Deployment astrago-frontend spec.template.spec.containers[0] (frontend) has no memory limit")
    # Disabled components render nothing, so their defaults are not held against prod.
    assert "astrago-experiment" not in output


def test_prod_is_also_a_stack_that_inherits_prod(policy_project: Path, engine_env: dict[str, str], stacks: list[E2EStack]) -> None:
    # A customer stack: any name, `inherits: prod`. It takes prod's release tags; a latest tag
    # of its own is refused as on prod itself. The program reads the prod stack file it inherits.
    shutil.copy2(ROOT / "Pulumi.prod.yaml", policy_project / "Pulumi.prod.yaml")
    stack = new_stack(policy_project, engine_env, "local", {
        "inherits": "prod",
        "releases": {"gpu-process-exporter": {"values": {"image": {"tag": "latest"}}}},
    }, prefix="site")
    stacks.append(stack)
    passed, output = preview(stack)
    assert not passed
    violation(output, stack, "gpu-process-exporter", "astrago-monitoring-gpu-process-exporter-release", "prod-pinned-image-tags",
              "CronJob gpu-process-exporter spec.jobTemplate.spec.template.spec.containers[0].image is docker.io/astrago/gpu-process-exporter:latest: `latest`")
    # prod's own tags (core-prod-...) pass.
    assert "astrago-core spec" not in output, output


def test_a_chart_outside_charts_own_is_refused(policy_project: Path, engine_env: dict[str, str], stacks: list[E2EStack]) -> None:
    # The catalog's local chart name climbs out of charts/own/ to a vendored copy: model/ finds
    # its Chart.yaml and accepts it, so the policy is what stops it.
    shutil.copytree(policy_project / "charts" / "own" / "gpu-process-exporter", policy_project / "vendor" / "gpu-process-exporter")
    catalog = policy_project / "catalog" / "releases.yaml"
    text = catalog.read_text()
    assert "chart: {local: gpu-process-exporter}" in text
    catalog.write_text(text.replace("chart: {local: gpu-process-exporter}", "chart: {local: ../../vendor/gpu-process-exporter}"))
    stack = new_stack(policy_project, engine_env, "local", {})
    stacks.append(stack)
    passed, output = preview(stack)
    assert not passed
    violation(output, stack, "gpu-process-exporter", "astrago-monitoring-gpu-process-exporter-release", "charts-from-this-repo",
              "chart 'charts/own/../../vendor/gpu-process-exporter' is neither a folder under charts/own/ nor an archive in charts/external/")
