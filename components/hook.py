"""Hook: a Helmfile-style hook as a resource in the same dependency graph.

A hook runs when the engine creates or deletes it, never in preview, so it
sits in the graph exactly where its step belongs: a preInstall check before
its release, a preDelete delay between the release's dependants and the
release. Its provider is this project's `astrago-hooks` plugin
(toolchain/go/hooks-provider, built by `make setup`): the pulumi-command
provider cannot be built on this site (toolchain/README.md), and a Pulumi
dynamic resource, which the hooks were first, makes the engine start a
Python provider process on every preview and update while all registrations
wait (0.16 s of a no-change preview, bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from model.catalog import Hook as HookSpec
from model.identity import HOOK_TYPE

# The plugin version `make setup` registers (toolchain/tools.toml [module.hooks-provider]);
# the engine loads exactly this one (tests/unit/test_hook.py keeps the two equal).
PROVIDER_VERSION = "0.1.0"


@dataclass(frozen=True)
class HookArgs:
    """Inputs of a Hook."""

    spec: HookSpec
    """The hook as the catalog declares it."""
    release: str
    """Release the hook belongs to (named in its messages)."""
    trigger: str
    """A value whose change re-runs a preInstall check (the chart digest)."""


class Hook(pulumi.CustomResource):
    """A step of a release's lifecycle, run in dependency order by the astrago-hooks provider."""

    release: pulumi.Output[str]
    hook: pulumi.Output[str]
    when: pulumi.Output[str]
    """preInstall (runs on create) or preDelete (runs on delete)."""
    check: pulumi.Output[str | None]
    """The check a preInstall hook runs (node-label)."""
    label: pulumi.Output[str | None]
    """key=value that at least one node must carry (node-label check)."""
    delay_s: pulumi.Output[int]
    """Seconds a preDelete hook waits before the release is removed."""
    trigger: pulumi.Output[str | None]
    """The release's chart digest for a preInstall check: a new chart replaces the hook, which runs the check again."""

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
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=PROVIDER_VERSION), opts)
        super().__init__(HOOK_TYPE, name, props, opts)
