"""Report what changed in the cluster behind the program's back, per release and namespace.

`python -m commands.drift --stack <stack>` (`make drift`) runs two checks:

1. `pulumi refresh --preview-only` (nothing is written), its engine events
   read from an event log: for each Helm release the provider's Read reports
   Helm's latest revision, status, chart version, values (the ones it was
   installed with, merged over the stack's) and the names of its objects; for
   each namespace its labels and annotations. A `helm upgrade --reuse-values
   --set ...` shows as the changed values and a new revision; a `helm
   uninstall` as the release being gone. Secret values stay masked (the
   refresh runs without --show-secrets, and every declared secret path is
   masked again).
2. The objects of each release against the cluster: the refresh only asks
   Helm, which records what it applied, so an object deleted from the cluster
   (`kubectl delete deployment ...`) is invisible to it. The manifest of the
   running revision (`helm get manifest`) is checked with one `kubectl get`
   per release, and every object missing is reported.

Each release's `helm.drift` (catalog, or the stack's override) decides:
fail: drift fails (exit 1); warn: printed as a warning; ignore: not checked.
Namespaces count as fail. Exit 0 when no enabled release
drifted, 1 when one did, 2 on error. Every call is bounded (--timeout).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cli.helm import HelmRelease, deployed_revision, helm_releases, revision_manifest
from cli.kubectl import cluster_scoped_kinds, kubectl
from cli.process import ToolError
from cli.pulumi import refresh_preview_events
from commands import ROOT, resolve_for_cluster
from model import structdiff
from model.errors import entry_point
from model.identity import NAMESPACE_TYPE, RELEASE_TYPE, SECRET_SIG_KEY
from model.manifest import CLUSTER_SCOPED_KINDS, object_namespace, parse_manifest
from model.values import MASK

GONE_OPS = ("delete", "deleted", "discard", "read-discard")


@dataclass(frozen=True)
class Step:
    """The refresh's view of one resource: its op and its outputs before and after."""

    urn: str
    type: str
    op: str
    old: dict[str, Any]
    new: dict[str, Any] | None
    """None when the refresh found the resource gone."""


@dataclass
class Finding:
    """What drifted in one release or namespace."""

    subject: str
    """`astrago (namespace astrago)` or `namespace astrago`."""
    mode: str
    """fail, warn or ignore (helm.drift)."""
    changes: list[str] = field(default_factory=list)


# --- the refresh ------------------------------------------------------------------

def steps(events: list[dict[str, Any]]) -> dict[str, Step]:
    """URN -> the last step the refresh reported for it."""
    found: dict[str, Step] = {}
    for event in events:
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            meta = (event.get(kind) or {}).get("metadata")
            if not meta:
                continue
            old = (meta.get("old") or {}).get("outputs") or {}
            new_state = meta.get("new")
            new = (new_state or {}).get("outputs") if new_state else None
            op = str(meta.get("op", ""))
            if kind == "resourcePreEvent" and meta.get("urn") in found:
                continue  # the outputs event, when there is one, is the result
            found[meta["urn"]] = Step(urn=meta["urn"], type=meta.get("type", ""), op=op, old=old,
                                      new=None if op in GONE_OPS else (new if new is not None else old))
    return found


def plain(node: Any) -> Any:
    """Outputs with every serialized secret shown as the mask."""
    if isinstance(node, dict):
        if SECRET_SIG_KEY in node:
            return MASK
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def changes(old: Any, new: Any, path: str, secret_paths: tuple[str, ...] = ()) -> list[str]:
    """`path: old -> new` for every leaf that differs (model.structdiff); under a declared secret path only presence shows."""
    return [change.text() for change in structdiff.diff(old, new, path, secret_paths=secret_paths)]


def release_changes(step: Step, secret_paths: tuple[str, ...]) -> list[str]:
    """What the refresh saw change in a Helm release."""
    if step.new is None:
        return ["the Helm release is gone from the cluster (uninstalled outside the program)"]
    old, new = plain(step.old), plain(step.new)
    lines = []
    before, after = old.get("status") or {}, new.get("status") or {}
    if before.get("revision") != after.get("revision"):
        lines.append(f"Helm revision: {before.get('revision')} -> {after.get('revision')} (a Helm operation ran outside the program)")
    for key in ("status", "version"):
        if before.get(key) != after.get(key):
            lines.append(f"Helm {'status' if key == 'status' else 'chart version'}: {before.get(key)} -> {after.get(key)}")
    lines += changes(old.get("values") or {}, new.get("values") or {}, "values", tuple(f"values.{p}" for p in secret_paths))
    lines += changes(old.get("resourceNames") or {}, new.get("resourceNames") or {}, "objects")
    return lines


def namespace_changes(step: Step) -> list[str]:
    """What the refresh saw change in a namespace the program created (only what the program sets: labels, annotations)."""
    if step.new is None:
        return ["the namespace is gone from the cluster"]
    lines = []
    for key in ("labels", "annotations"):
        old = (step.old.get("metadata") or {}).get(key) or {}
        new = (step.new.get("metadata") or {}).get(key) or {}
        if key == "annotations":
            # Written by the provider and the API server on every apply, not by people.
            old = {k: v for k, v in old.items() if not k.startswith(("pulumi.com/", "kubectl.kubernetes.io/"))}
            new = {k: v for k, v in new.items() if not k.startswith(("pulumi.com/", "kubectl.kubernetes.io/"))}
        lines += changes(old, new, f"metadata.{key}")
    return lines


# --- the objects -------------------------------------------------------------------

def missing_objects(release: HelmRelease, revision: int, timeout_s: float, cluster_kinds: frozenset[str] = CLUSTER_SCOPED_KINDS) -> list[str]:
    """Objects of the running revision's manifest that the cluster does not have, in whatever namespace they live.

    Each object is asked for where it lives: its own namespace, the release's
    when it names none, none at all when its kind is cluster-scoped; so
    kubectl gets no --namespace that an object in kube-system would contradict.
    """
    expected = parse_manifest(revision_manifest(release.namespace, release.name, revision, timeout_s))
    if not expected:
        return []
    placed = {key: object_namespace(key, release.namespace, cluster_kinds) for key in expected}
    stream = yaml.safe_dump_all([_reference(key, namespace) for key, namespace in placed.items()])
    result = kubectl(["get", "--filename", "-", "--ignore-not-found",
                      "--output", "custom-columns=API:.apiVersion,KIND:.kind,NS:.metadata.namespace,NAME:.metadata.name", "--no-headers"],
                     timeout_s, stdin=stream)
    found = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4:
            _, kind, namespace, name = fields
            found.add((kind, "" if namespace == "<none>" else namespace, name))
    missing = []
    for key, namespace in placed.items():
        api, kind, _, name = key
        if (kind, namespace, name) not in found:
            where = f"{namespace}/{name}" if namespace else name
            missing.append(f"object missing from the cluster: {api} {kind} {where} (deleted outside Helm)")
    return missing


def _reference(key: tuple[str, str, str, str], namespace: str) -> dict[str, Any]:
    """The least of an object kubectl needs to find it."""
    api, kind, _, name = key
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata}


# --- the report ----------------------------------------------------------------------

def release_name(step: Step) -> str:
    """The Helm release name of a Release step (its outputs, else its URN)."""
    for outputs in (step.new, step.old):
        if outputs and outputs.get("name"):
            return str(outputs["name"])
    return step.urn.rsplit("::", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder holding the stack files (default: this repository)")
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the refresh may take; each helm/kubectl call gets at most 120 (default 300)")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    deployment = resolve_for_cluster(args.stack, root, args.charts_dir)
    if isinstance(deployment, int):
        return deployment
    call_timeout = min(args.timeout, 120.0)
    modes = {name: release.helm.drift_mode for name, release in deployment.releases.items()}
    findings: list[Finding] = []
    checked: list[str] = []
    try:
        refreshed = steps(refresh_preview_events(root, args.stack, args.timeout))
        installed = helm_releases(list(deployment.releases), call_timeout)
        kinds = CLUSTER_SCOPED_KINDS | cluster_scoped_kinds(call_timeout)
        seen: set[str] = set()
        for step in refreshed.values():
            if step.type == RELEASE_TYPE:
                name = release_name(step)
                seen.add(name)
                mode = modes.get(name, "fail")  # in the state but no longer enabled: still the program's
                if mode == "ignore":
                    continue
                release = deployment.releases.get(name)
                namespace = release.namespace if release else str(step.old.get("namespace") or "?")
                finding = Finding(subject=f"{name} (namespace {namespace})", mode=mode,
                                  changes=release_changes(step, tuple(release.secret_paths) if release else ()))
                helm = installed.get((namespace, name))
                if step.new is not None and helm is not None:
                    revision = deployed_revision(helm, call_timeout)
                    if revision is not None:
                        finding.changes += missing_objects(helm, revision, call_timeout, kinds)
                checked.append(name)
                if finding.changes:
                    findings.append(finding)
            elif step.type == NAMESPACE_TYPE:
                lines = namespace_changes(step)
                if lines:
                    name = ((step.new or step.old).get("metadata") or {}).get("name") or step.urn.rsplit("::", 1)[-1]
                    findings.append(Finding(subject=f"namespace {name}", mode="fail", changes=lines))
        never = [n for n in deployment.releases if n not in seen and modes[n] != "ignore"]
    except (ToolError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"drift of stack {args.stack}: `pulumi refresh --preview-only` (Helm's record of each release), then each release's "
          f"objects checked against the cluster (a deleted object is invisible to the refresh)")
    for finding in findings:
        label = {"fail": "DRIFT", "warn": "WARN "}.get(finding.mode, "DRIFT")
        print(f"{label} {finding.subject} [helm.drift: {finding.mode}]")
        for line in finding.changes:
            print(f"    {line}")
    ignored = [n for n, m in modes.items() if m == "ignore"]
    if ignored:
        print(f"not checked (helm.drift: ignore): {', '.join(ignored)}")
    if never:
        print(f"not deployed by this stack yet (nothing to compare): {', '.join(never)}")
    failing = [f.subject for f in findings if f.mode != "warn"]
    warned = [f.subject for f in findings if f.mode == "warn"]
    if failing:
        print(f"drift: {len(failing)} drifted with helm.drift fail: {failing}" + (f"; warnings: {warned}" if warned else ""))
        return 1
    if warned:
        print(f"drift: warnings only (helm.drift: warn): {warned}")
        return 0
    print(f"drift: none in {len(checked)} release(s)")
    return 0


if __name__ == "__main__":
    entry_point(main, "drift")
