"""Render parity of a stack with the site's Helmfile: `make parity DIR=<helmfile dir> ENV=<env> STACK=<stack>`.

Every release is rendered with the real Helm twice, with the same Kubernetes
version and no cluster: by `helmfile template` (Helmfile's resolved values,
its own way of passing them) and with the stack's resolved values
(`helm template` of the release's chart as the program installs it). The
objects are compared with the project's structural diff (model/structdiff):
objects only on one side and every leaf that differs are printed, secrets
masked. Helmfile's secret values are rendered on both sides, so a difference
never comes from a secret the stack has not been given yet (`make secret`
sets them; they are not compared here). Fields a chart generates anew on
every render (random passwords, generated certificates, their checksums)
differ between two renders of the same values: the stack's side is rendered
twice to find them, and they are listed as not compared.

What the program adds on purpose is rendered a third time, with the
release's post-render (charts/patches/<release>/, the offline registry's
image rewrite): those changes are listed as intended, each with its reason,
and do not fail parity. Exit 0 when nothing else differs, 1 when something
does, 2 on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli import helm
from cli import helmfile as hf
from cli.process import ToolError
from commands import ROOT
from model.deployment import Deployment, ResolvedRelease
from model.errors import InputError
from model.manifest import ObjectKey, key_text, parse_manifest
from model.structdiff import ObjectsDiff, diff_objects
from model.values import get_path, set_path
from postrender.plan import write_wrapper
from render.releases import offline_kube_version


def helmfile_secrets(release: ResolvedRelease, state: hf.HelmfileState) -> dict[str, str]:
    """Values path -> Helmfile's plain value at each of the release's secret paths."""
    for entry in state.releases:
        if entry.name == release.name and entry.namespace == release.namespace:
            values = entry.merged_values()
            return {path: str(v) for path in release.secret_paths if (v := get_path(values, path)) not in (None, "")}
    return {}


def render_stack_side(root: Path, release: ResolvedRelease, secrets: dict[str, str], kube_version: str, postrender: bool) -> str:
    """helm template of the release as the program installs it (with or without its post-render)."""
    values: dict[str, Any] = dict(release.values)
    for path, value in secrets.items():
        set_path(values, path, value)
    wrapper = None
    if postrender and release.postrender is not None:
        wrapper = str(write_wrapper(release.postrender))
    request = helm.RenderRequest(name=release.name, namespace=release.namespace, chart=root / release.chart_path, values=values,
                                 postrender=wrapper)
    return helm.render_template(request, kube_version, (), upgrade=False, timeout_s=300.0, cwd=root)


def stable_only(result: ObjectsDiff, unstable: set[tuple[ObjectKey, str]]) -> ObjectsDiff:
    """result without the changes at fields that differ between two renders of the same inputs."""
    changed = {key: kept for key, changes in result.changed.items() if (kept := [c for c in changes if (key, c.path) not in unstable])}
    return ObjectsDiff(added=result.added, removed=result.removed, changed=changed)


def format_diff(title: str, result: ObjectsDiff, namespace: str) -> list[str]:
    added, changed, removed = result.counts()
    lines = [f"{title}: {changed} changed, {added} only in the stack, {removed} only in Helmfile"]
    for key, changes in result.changed.items():
        lines.append(f"  ~ {key_text(key, namespace)}")
        lines.extend(f"      {change.text()}" for change in changes)
    lines.extend(f"  + {key_text(key, namespace)} (only with the stack)" for key in result.added)
    lines.extend(f"  - {key_text(key, namespace)} (only with Helmfile)" for key in result.removed)
    return lines


def parity(root: Path, folder: Path, environment: str, deployment: Deployment) -> tuple[list[str], bool]:
    """The report lines, and whether anything differs beyond the intended differences."""
    kube_version = offline_kube_version(root)
    state = hf.build(folder, environment)
    theirs_text = hf.template(folder, environment, kube_version)
    lines: list[str] = []
    differs = False
    installed = {(r.namespace, r.name) for r in state.releases if r.installed}
    for release in deployment.releases.values():
        key = (release.namespace, release.name)
        if key not in installed:
            differs = True
            lines.append(f"# {release.name} (namespace {release.namespace}): the stack deploys it, Helmfile does not (`up` would install it)")
            continue
        secrets = helmfile_secrets(release, state)
        known = sorted(set(secrets.values()))
        theirs = parse_manifest(theirs_text.get(key, ""))
        ours = parse_manifest(render_stack_side(root, release, secrets, kube_version, postrender=False))
        again = parse_manifest(render_stack_side(root, release, secrets, kube_version, postrender=False))
        # Fields the chart generates anew on every render (randAlphaNum, genCA, bcrypt, their checksums):
        # they differ between any two renders, Helmfile's or ours; on the cluster `lookup` keeps them.
        unstable = {(k, c.path) for k, changes in diff_objects(ours, again, secrets=known).changed.items() for c in changes}
        result = stable_only(diff_objects(theirs, ours, secrets=known), unstable)
        title = f"# {release.name} (namespace {release.namespace})"
        if result.differs:
            differs = True
            lines.extend(format_diff(title, result, release.namespace))
        else:
            lines.append(f"{title}: same objects and fields")
        if unstable:
            lines.append(f"  not compared ({len(unstable)} field(s) the chart generates anew on every render): "
                         + ", ".join(sorted(f"{k[1]} {k[3]}: {p}" for k, p in unstable)[:6]) + (" ..." if len(unstable) > 6 else ""))
        if release.postrender is not None and release.postrender.registry and release.postrender.pins is None:
            # The image move needs the stack's images lock (digests), which a migration makes after parity.
            lines.append(f"  intended changes not shown: the offline registry {release.postrender.registry} pins images by the "
                         f"stack's images lock, which has no usable digests for this release yet (`make images` and `make bundle` record them)")
        elif release.postrender is not None:
            post = parse_manifest(render_stack_side(root, release, secrets, kube_version, postrender=True))
            intended = stable_only(diff_objects(ours, post, secrets=known), unstable)
            if intended.differs:
                reason = release.postrender.description()
                lines.extend(f"  intended ({reason}): {line.strip()}" for line in format_diff("post-render", intended, release.namespace)[1:])
    for namespace, name in sorted(installed - {(r.namespace, r.name) for r in deployment.releases.values()}):
        differs = True
        lines.append(f"# {name} (namespace {namespace}): Helmfile installs it, the stack does not deploy it")
    return lines, differs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="the site's Helmfile folder")
    parser.add_argument("--env", required=True, help="the Helmfile environment")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from")
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder holding the stack files")
    args = parser.parse_args(argv)
    from model.deployment import resolve_stack

    root = args.project.resolve()
    try:
        deployment = resolve_stack(args.stack, root, args.charts_dir)
        lines, differs = parity(root, args.dir.resolve(), args.env, deployment)
    except (InputError, ToolError, helm.RenderError) as error:
        print(f"error: parity: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    if differs:
        print(f"parity: stack {args.stack} renders differently from Helmfile environment {args.env}")
        return 1
    print(f"parity: stack {args.stack} renders what Helmfile environment {args.env} renders ({len(deployment.releases)} releases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
