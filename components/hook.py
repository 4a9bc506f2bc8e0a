"""Hook: a Helmfile-style hook as a resource in the same dependency graph.

A hook runs when the engine creates or deletes it, never in preview, so it
sits in the graph exactly where its step belongs: a preInstall check before
its release, a preDelete delay between the release's dependants and the
release. It is a Pulumi dynamic resource (run by the Python SDK's own
provider) because the pulumi-command provider plugin cannot be built on
this site (see toolchain/README.md); the behaviour is the same as a
`command.local.Command` with a create and a delete step.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from model.catalog import Hook as HookSpec

# kubectl gets this long to answer; a hook must never hang an update.
KUBECTL_TIMEOUT_S = 60


class _HookProvider(ResourceProvider):
    """Runs the hook's step on create (checks) or on delete (delays)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get("check") == "node-label":
            _require_labelled_node(props["release"], props["hook"], props["label"])
        return CreateResult(id_=f"{props['release']}-{props['hook']}", outs=props)

    def diff(self, _id: str, old: dict[str, Any], new: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("check", "label", "delay_s", "trigger") if old.get(k) != new.get(k)]
        # A new trigger (chart content) re-runs a check by replacing the hook.
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        delay = int(props.get("delay_s") or 0)
        if delay:
            time.sleep(delay)


def _require_labelled_node(release: str, hook: str, label: str) -> None:
    try:
        found = subprocess.run(
            ["kubectl", "get", "nodes", "-l", label, "-o", "name"],
            capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"hook {release}/{hook}: could not list nodes with kubectl: {error}") from None
    if found.returncode != 0:
        raise RuntimeError(f"hook {release}/{hook}: kubectl get nodes failed: {found.stderr.strip()}")
    if not found.stdout.strip():
        key = label.split("=", 1)[0]
        raise RuntimeError(
            f"hook {release}/{hook}: no node carries the label {label}, so {release} has nothing to run on. "
            f"Label the GPU nodes (`kubectl label node <node> {label}`) or disable {release} in this stack "
            f"(missing label: {key})"
        )


@dataclass(frozen=True)
class HookArgs:
    """Inputs of a Hook."""

    spec: HookSpec
    """The hook as the catalog declares it."""
    release: str
    """Release the hook belongs to (named in its messages)."""
    trigger: str
    """A value whose change re-runs a preInstall check (the chart digest)."""


class Hook(Resource):
    """A step of a release's lifecycle, run in dependency order."""

    def __init__(self, name: str, args: HookArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        spec = args.spec
        props: dict[str, Any] = {
            "release": args.release,
            "hook": spec.name,
            "when": spec.when,
            "check": spec.check,
            "label": spec.label,
            "delay_s": spec.delay_s,
            # preDelete hooks only act on delete: a chart change must not replace them.
            "trigger": args.trigger if spec.when == "preInstall" else None,
        }
        super().__init__(_HookProvider(), name, props, opts)
