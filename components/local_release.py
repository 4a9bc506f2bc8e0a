"""LocalRelease: one Helm release whose chart is a path inside this repository."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import pulumi

from components.helm_release import HelmRelease, HelmReleaseArgs
from components.hook import Hook, HookArgs
from model.catalog import HelmOptions
from model.catalog import Hook as HookSpec
from model.identity import LOCAL_RELEASE_TYPE, Description, helm_release_name, hook_name
from model.postrender import PostRender, write_wrapper
from model.values import set_path


class LocalReleaseArgs(TypedDict):
    """Inputs of a LocalRelease; all plain values except the secrets."""

    release_name: str
    """Helm release name (the catalog's name; the same on every stack)."""
    namespace: str
    """Namespace the release is installed into (created by the Platform)."""
    chart_path: str
    """Chart directory or locked archive, relative to the project root (never a remote repository)."""
    chart_version: str
    """Chart version, recorded in outputs and the Helm release description."""
    chart_digest: str
    """sha256 of the chart content; part of the release inputs so a template edit shows as an update."""
    values: Mapping[str, Any]
    """Resolved Helm values without secrets."""
    secret_values: Mapping[str, pulumi.Output[str]]
    """Values path -> secret Output; merged into the values, so they stay secret in state and diffs."""
    helm: HelmOptions
    """Install/upgrade options from the catalog."""
    hooks: Sequence[HookSpec]
    """Steps run before install or before removal of the release."""
    after: Sequence[pulumi.Resource]
    """Resources that must be ready before this release starts (tier order, needs, namespace)."""
    adopt: bool
    """Import the release Helm already has under this name and namespace (Helmfile migration) instead of installing it."""
    postrender: PostRender | None
    """Helm post-render (patches, image registry): its wrapper is written and its effect named in the description."""


class LocalRelease(pulumi.ComponentResource):
    """A Helm release of a local chart, with its hooks, ordered by its dependencies."""

    status: pulumi.Output[str]
    """Helm's status of the release (deployed, failed, ...)."""
    revision: pulumi.Output[int]
    """Helm revision number of the release."""
    chart: pulumi.Output[str]
    version: pulumi.Output[str]
    digest: pulumi.Output[str]
    namespace: pulumi.Output[str]
    waits_for: list[pulumi.Resource]
    """What the Helm release waits for: its preInstall hooks, tier predecessors, needs, namespace."""
    ready: list[pulumi.Resource]
    """What dependants wait for: the release and its preDelete hooks (so those run before it is removed)."""

    def __init__(self, name: str, args: LocalReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(LOCAL_RELEASE_TYPE, name, None, opts)
        options = args["helm"]
        before: list[pulumi.Resource] = list(args["after"])
        for spec in args["hooks"]:
            if spec.when == "preInstall":
                before.append(
                    Hook(hook_name(name, spec.name), HookArgs(spec=spec, release=args["release_name"], trigger=args["chart_digest"]),
                         opts=pulumi.ResourceOptions(parent=self, depends_on=list(args["after"])))
                )
        postrender = args["postrender"]
        if postrender is not None:
            # The provider runs the wrapper on install and upgrade; its relative path
            # is the same on every machine, so only a change of what it does (in the
            # description: patch digest, registry) makes an update.
            write_wrapper(postrender)
        description = Description(args["chart_version"], args["chart_digest"], postrender.description() if postrender else "").format()
        release = HelmRelease(
            helm_release_name(name),
            HelmReleaseArgs(
                name=args["release_name"],
                namespace=args["namespace"],
                chart=args["chart_path"],
                values=_with_secrets(args["values"], args["secret_values"]),
                # Helm compares only values and chart version; the digest makes
                # any change of chart content (or of its patches) an update of this release.
                description=description,
                postrender=postrender.wrapper if postrender else None,
                atomic=options.atomic,
                cleanup_on_fail=options.cleanup_on_fail,
                timeout=options.timeout_s,
                skip_await=not options.wait,
                wait_for_jobs=options.wait_for_jobs,
                max_history=options.max_history,
                create_namespace=False,
            ),
            # The provider's import id of a Helm release is <namespace>/<name>. Pulumi
            # imports it, then updates it to these inputs (chart path, description,
            # options: one Helm revision); a later run without adopt is a normal diff.
            opts=pulumi.ResourceOptions(parent=self, depends_on=before,
                                        import_=f"{args['namespace']}/{args['release_name']}" if args["adopt"] else None),
        )
        self.waits_for = before
        self.ready = [release]
        for spec in args["hooks"]:
            if spec.when == "preDelete":
                # Created after the release and awaited by its dependants, so on
                # destroy it is deleted (and waits) after them, before the release.
                self.ready.append(
                    Hook(hook_name(name, spec.name), HookArgs(spec=spec, release=args["release_name"], trigger=args["chart_digest"]),
                         opts=pulumi.ResourceOptions(parent=self, depends_on=[release]))
                )
        self.status = release.status.apply(lambda s: (s or {}).get("status") or "unknown")
        self.revision = release.status.apply(lambda s: (s or {}).get("revision") or 0)
        self.chart = pulumi.Output.from_input(args["chart_path"])
        self.version = pulumi.Output.from_input(args["chart_version"])
        self.digest = pulumi.Output.from_input(args["chart_digest"])
        self.namespace = pulumi.Output.from_input(args["namespace"])
        self.register_outputs({
            "status": self.status, "revision": self.revision, "chart": self.chart,
            "version": self.version, "digest": self.digest, "namespace": self.namespace,
        })


def _with_secrets(values: Mapping[str, Any], secrets: Mapping[str, pulumi.Output[str]]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(values))
    for path, secret in secrets.items():
        set_path(merged, path, pulumi.Output.secret(secret))
    return merged
