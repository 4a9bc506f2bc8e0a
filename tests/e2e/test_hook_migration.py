"""A stack deployed when hooks were Pulumi dynamic resources moves to the astrago-hooks provider.

Before toolchain/go/hooks-provider, components/hook.py registered each hook as
a dynamic resource whose provider (a class of that module) is pickled into
the state by reference. The first update with the new provider replaces every
hook; the old ones are deleted by the Python dynamic provider, which must
still find `components.hook._HookProvider` (components/legacy_hook.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from model.catalog import HOOK_RESOURCE_TYPE
from tests.e2e.conftest import ROOT, E2EStack, copy_project, dispose, new_stack, sync_standins

DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"

# components/hook.py as it was before the astrago-hooks provider (its behaviour on create and
# delete, its inputs, and its provider class defined in this module, so pickled as
# components.hook._HookProvider). Only what deploying and deleting such hooks needs.
OLD_HOOK_MODULE = '''"""Hooks as Pulumi dynamic resources (the design before the astrago-hooks provider)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider

from model.catalog import Hook as HookSpec


class _HookProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['release']}-{props['hook']}", outs=props)


@dataclass(frozen=True)
class HookArgs:
    spec: HookSpec
    release: str
    trigger: str


class Hook(Resource):
    def __init__(self, name: str, args: HookArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        spec = args.spec
        props = {"release": args.release, "hook": spec.name, "when": spec.when, "check": spec.check, "label": spec.label,
                 "delay_s": spec.delay_s, "trigger": args.trigger if spec.when == "preInstall" else None}
        super().__init__(_HookProvider(), name, props, opts)
'''


@pytest.fixture
def old_stack(tmp_path: Path, engine_env: dict[str, str]) -> Iterator[E2EStack]:
    """The local stack with both hooked releases, deployed by the old hook module."""
    project = copy_project(tmp_path / "project")
    # The wait before nfs-provisioner goes is 30 s in the catalog; 1 s shows it runs.
    catalog_file = project / "catalog" / "releases.yaml"
    catalog = yaml.safe_load(catalog_file.read_text())
    for release in catalog["releases"]:
        for hook in release.get("hooks") or []:
            if hook["when"] == "preDelete":
                hook["delay_s"] = 1
    catalog_file.write_text(yaml.safe_dump(catalog, sort_keys=False))
    (project / "components" / "hook.py").write_text(OLD_HOOK_MODULE)
    sync_standins(project, tmp_path / "scratch")
    stack = new_stack(project, engine_env, "local", {"releases": {
        "gpu-operator": {"enabled": True},
        "astrago": {"values": {"mariadb": {"persistence": {"enabled": False}}, "storage": {"workloadLogs": {"enabled": False}}}},
    }})
    # The local stack replaces nfs-provisioner by an external storage class; deploy it instead.
    stack_file = project / f"Pulumi.{stack.name}.yaml"
    settings = yaml.safe_load(stack_file.read_text())
    settings["config"]["astrago-deploy:externals"].pop("nfs-provisioner")
    stack_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    try:
        yield stack
    finally:
        dispose(stack)


def _types(stack: E2EStack) -> list[str]:
    deployment = stack.stack.export_stack().deployment or {}
    return [r["type"] for r in deployment.get("resources", [])]


def test_the_first_update_replaces_dynamic_hooks_and_deletes_the_old_ones(old_stack: E2EStack) -> None:
    old = old_stack.stack.up(color="never")
    assert old.summary.result == "succeeded"
    assert _types(old_stack).count(DYNAMIC_TYPE) == 2, "the old module should have made two dynamic hooks"

    shutil.copy2(ROOT / "components" / "hook.py", old_stack.project / "components" / "hook.py")
    result = old_stack.stack.up(color="never")
    changes = result.summary.resource_changes or {}
    assert changes.get(auto.OpType.CREATE) == 2 and changes.get(auto.OpType.DELETE) == 2, changes
    types = _types(old_stack)
    assert types.count(HOOK_RESOURCE_TYPE) == 2 and DYNAMIC_TYPE not in types, types
    assert "pulumi:providers:pulumi-python" not in types, "the dynamic provider's default instance is gone with its hooks"
    old_stack.stack.preview(expect_no_changes=True, color="never")
