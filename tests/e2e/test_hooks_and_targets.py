"""Hooks run in the graph (and not in preview); TIER=/RELEASE= limit an update."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi import automation as auto

from commands.targets import stack_enabled, target_urns
from tests.support.engine import E2EStack, copy_project, dispose, new_stack, sync_standins

GPU_LABEL = "nvidia.com/gpu.present"


@pytest.fixture
def gpu_stack(tmp_path: Path, engine_env: dict[str, str]) -> Iterator[E2EStack]:
    """The local stack plus the gpu-operator (a stand-in chart) and its pre-flight hook."""
    project = copy_project(tmp_path / "project")
    sync_standins(project, tmp_path / "scratch")
    stack = new_stack(project, engine_env, "local", {"releases": {
        "gpu-operator": {"enabled": True},
        "astrago": {"values": {"mariadb": {"persistence": {"enabled": False}}, "storage": {"workloadLogs": {"enabled": False}}}},
    }})
    try:
        yield stack
    finally:
        dispose(stack)


def _gpu_nodes(stack: E2EStack) -> list[str]:
    nodes = json.loads(stack.kubectl("get", "nodes", "-l", f"{GPU_LABEL}=true", "-o", "json").stdout)["items"]
    return [n["metadata"]["name"] for n in nodes]


def test_gpu_preflight_fails_clearly_without_gpu_nodes_and_is_skipped_in_preview(gpu_stack: E2EStack) -> None:
    nodes = _gpu_nodes(gpu_stack)
    assert len(nodes) == 2, nodes
    for node in nodes:
        gpu_stack.kubectl("label", "node", node, f"{GPU_LABEL}-")
    try:
        preview = gpu_stack.stack.preview(color="never")
        assert preview.change_summary.get(auto.OpType.CREATE, 0) > 0, "preview does not run the hook"
        with pytest.raises(auto.CommandError) as failed:
            gpu_stack.stack.up(color="never")
        message = str(failed.value)
        assert "no node carries the label nvidia.com/gpu.present=true" in message, message[-1500:]
        assert "missing label: nvidia.com/gpu.present" in message
        releases = {r["name"] for r in json.loads(gpu_stack.helm("list", "-A", "-o", "json"))}
        assert "gpu-operator" not in releases, "the operator must not be installed when its pre-flight fails"
    finally:
        for node in nodes:
            gpu_stack.kubectl("label", "node", node, f"{GPU_LABEL}=true", "--overwrite")
    result = gpu_stack.stack.up(color="never")
    assert result.summary.result == "succeeded"
    assert "gpu-operator" in {r["name"] for r in json.loads(gpu_stack.helm("list", "-A", "-o", "json"))}


def test_release_target_updates_only_that_release(gpu_stack: E2EStack) -> None:
    stack = gpu_stack.stack
    stack.up(color="never")
    enabled = stack_enabled(gpu_stack.name, gpu_stack.project)
    # RELEASE= names exact URNs: the Helm release and its hooks, as the engine recorded them.
    deployed_urns = {r["urn"] for r in (stack.export_stack().deployment or {}).get("resources", [])}
    operator = target_urns(gpu_stack.name, tier="", release="gpu-operator", enabled=enabled)
    assert len(operator) == 2 and set(operator) <= deployed_urns, (operator, sorted(deployed_urns))
    stack.set_config("releases.keycloak-addons.values.realm.displayName", auto.ConfigValue("Astrago Targeted"), path=True)
    stack.set_config("releases.gpu-process-exporter.values.schedule", auto.ConfigValue("*/2 * * * *"), path=True)
    targets = target_urns(gpu_stack.name, tier="", release="keycloak-addons", enabled=enabled)
    result = stack.up(target=targets, color="never")
    changes = result.summary.resource_changes or {}
    assert changes.get(auto.OpType.UPDATE) == 1, changes
    pending = stack.preview(color="never")
    assert pending.change_summary.get(auto.OpType.UPDATE) == 1, f"gpu-process-exporter's change is still pending: {pending.change_summary}"
    realm = gpu_stack.kubectl("get", "configmap", "realm-config", "-n", "keycloak", "-o", "jsonpath={.data.realm\\.json}").stdout
    assert "Astrago Targeted" in realm
    tier_targets = target_urns(gpu_stack.name, tier="monitoring", release="", enabled=enabled)
    assert (stack.up(target=tier_targets, color="never").summary.resource_changes or {}).get(auto.OpType.UPDATE) == 1
    stack.preview(expect_no_changes=True, color="never")
