"""Show what `up` would change inside each Helm release: objects and fields, secrets masked.

`python -m commands.diff --stack <stack> [--release NAME]` (`make diff`):
for every enabled release, `helm template` of its chart with the stack's
resolved values (what would be deployed) is compared with `helm get
manifest` of the revision that runs (what Helm applied; a release not
installed is all new). Objects are matched by apiVersion, kind, namespace
and name; only objects that differ are printed, as a short unified diff of
their YAML. A release without change prints nothing.

Secrets: the values are rendered with every secret masked (the stack file is
read without its passphrase), so Secret data and stringData are masked on
both sides and every value the running revision was installed with at a
declared secret path is replaced by the mask wherever it appears. A changed
secret therefore never shows; a diff never prints one.

Exit code: 0 no difference, 1 differences, 2 error (bad stack, missing
tool, unreachable cluster, failed render).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cli.helm import HelmRelease, deployed_revision, helm_releases, release_manifest, release_secret_values
from cli.process import ToolError, run, tool
from commands.live import ROOT, resolve_for_cluster
from model.catalog import load_catalog
from model.deployment import Deployment, ResolvedRelease
from model.errors import InputError
from model.manifest import ObjectKey, key_text, mask_object, parse_manifest, scrub

CONTEXT_LINES = 3


@dataclass(frozen=True)
class Capabilities:
    """What the cluster offers a chart (Helm's .Capabilities), so templates render as on install."""

    kube_version: str
    api_versions: tuple[str, ...]


@dataclass
class ReleaseDiff:
    """What `up` would change in one release."""

    name: str
    namespace: str
    installed: HelmRelease | None
    revision: int | None
    """Revision compared against (the one that runs); None when not installed or never deployed."""
    added: list[ObjectKey] = field(default_factory=list)
    removed: list[ObjectKey] = field(default_factory=list)
    changed: list[tuple[ObjectKey, list[str]]] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def capabilities(timeout_s: float) -> Capabilities:
    """The cluster's version and API groups (two kubectl calls)."""
    kubectl = tool("kubectl")
    version = json.loads(run([kubectl, "version", "--output", "json", f"--request-timeout={int(timeout_s)}s"], timeout_s + 5).stdout)
    server = (version.get("serverVersion") or {}).get("gitVersion")
    if not server:
        raise ToolError("`kubectl version` reported no server version: is the cluster reachable?")
    apis = run([kubectl, "api-versions", f"--request-timeout={int(timeout_s)}s"], timeout_s + 5).stdout.split()
    return Capabilities(kube_version=server, api_versions=tuple(apis))


def render(release: ResolvedRelease, values: dict[str, Any], root: Path, caps: Capabilities, upgrade: bool, timeout_s: float) -> str:
    """`helm template` of the release's chart with these (masked) values, as an install or upgrade would render it."""
    with tempfile.TemporaryDirectory(prefix="astrago-diff-") as folder:
        values_file = Path(folder) / "values.yaml"
        values_file.write_text(yaml.safe_dump(values, sort_keys=True))
        command = [tool("helm"), "template", release.name, str(root / release.chart_path), "--namespace", release.namespace,
                   "--values", str(values_file), "--kube-version", caps.kube_version]
        command += [f"--api-versions={api}" for api in caps.api_versions]
        if upgrade:
            command.append("--is-upgrade")
        # The program's post-render (patches, image registry), when the release has one, runs as the provider runs it.
        postrender = getattr(release, "postrender", None)
        if postrender is not None:
            command += ["--post-renderer", sys.executable]
            command += [f"--post-renderer-args={arg}" for arg in ["-m", "postrender", *postrender.arguments()]]
        return run(command, timeout_s, cwd=root).stdout


def compare(desired: dict[ObjectKey, dict[str, Any]], live: dict[ObjectKey, dict[str, Any]], live_secrets: Iterable[str],
            context: int = CONTEXT_LINES) -> tuple[list[ObjectKey], list[ObjectKey], list[tuple[ObjectKey, list[str]]]]:
    """Added, removed and changed objects (with their diff lines), everything masked.

    desired was rendered from masked values; live holds what the cluster was
    given, so its secret values (live_secrets) are masked in it first.
    """
    secrets = list(live_secrets)
    added = [k for k in desired if k not in live]
    removed = [k for k in live if k not in desired]
    changed = []
    for key in desired:
        if key not in live:
            continue
        new = mask_object(desired[key], secrets)
        old = mask_object(live[key], secrets)
        if new != old:
            changed.append((key, object_diff(old, new, context)))
    return added, removed, changed


def object_diff(old: dict[str, Any], new: dict[str, Any], context: int = CONTEXT_LINES) -> list[str]:
    """A unified diff of two objects' YAML: each hunk headed by `@ <path>` of the YAML it sits in, then its lines."""
    a = yaml.safe_dump(old, sort_keys=True, width=1 << 20).splitlines()
    b = yaml.safe_dump(new, sort_keys=True, width=1 << 20).splitlines()
    lines: list[str] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first = next(op for op in group if op[0] != "equal")
        tag, i1, _, j1, _ = first
        path = yaml_path(b, j1) if tag == "insert" else yaml_path(a, i1)
        lines.append(f"@ {path or '(top)'}")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines.extend(f"  {line}" for line in a[i1:i2])
                continue
            lines.extend(f"- {line}" for line in a[i1:i2])
            lines.extend(f"+ {line}" for line in b[j1:j2])
    return lines


def yaml_path(lines: list[str], index: int) -> str:
    """The dotted path of the mapping that holds line `index` of a block-style YAML dump (`[]` for a list item)."""
    if index >= len(lines):
        index = len(lines) - 1
    if index < 0:
        return ""

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    line = lines[index]
    current = indent(line) + (2 if line.lstrip().startswith("- ") else 0)
    parts: list[str] = []
    for k in range(index - 1, -1, -1):
        text = lines[k]
        spaces, body = indent(text), text.strip()
        if spaces >= current or not body:
            continue
        if body.startswith("- ") or body == "-":
            # The list item holding the line; its key in the dump may sit at the item's own indentation.
            parts.append("[]")
            current = spaces + 1
            continue
        key = body.split(":", 1)[0].strip("'\"")
        parts.append(key)
        current = spaces
        if spaces == 0:
            break
    path = ""
    for part in reversed(parts):
        path = f"{path}{part}" if part == "[]" else (f"{path}.{part}" if path else part)
    return path


def diff_release(release: ResolvedRelease, deployment: Deployment, installed: HelmRelease | None, root: Path,
                 caps: Capabilities, timeout_s: float) -> ReleaseDiff:
    """Render the release, fetch what runs, compare."""
    revision = deployed_revision(installed, timeout_s) if installed else None
    result = ReleaseDiff(name=release.name, namespace=release.namespace, installed=installed, revision=revision)
    desired = parse_manifest(render(release, deployment.masked_values(release.name), root, caps, upgrade=installed is not None, timeout_s=timeout_s))
    live: dict[ObjectKey, dict[str, Any]] = {}
    secrets: list[str] = []
    if revision is not None:
        live = parse_manifest(release_manifest(release.namespace, release.name, revision, timeout_s))
        secrets = release_secret_values(release.namespace, release.name, revision, release.secret_paths, timeout_s)
    result.added, result.removed, result.changed = compare(desired, live, secrets)
    # Last guard: nothing printed may hold a secret the release runs with.
    result.changed = [(k, scrub(lines, secrets)) for k, lines in result.changed]
    return result


def format_release(diff: ReleaseDiff) -> str:
    """The printed form of one release's differences."""
    where = f"namespace {diff.namespace}"
    if diff.installed is None:
        state = "not installed: every object is new"
    elif diff.revision is None:
        state = f"Helm revision {diff.installed.revision} is {diff.installed.status} and none ever deployed: every object is new"
    elif diff.revision != diff.installed.revision:
        state = f"compared with revision {diff.revision} (deployed); the latest, {diff.installed.revision}, is {diff.installed.status}"
    else:
        state = f"compared with revision {diff.revision}"
    counts = f"{len(diff.changed)} changed, {len(diff.added)} new, {len(diff.removed)} removed"
    lines = [f"# {diff.name} ({where}; {state}): {counts}"]
    for key, body in diff.changed:
        lines.append(f"~ {key_text(key, diff.namespace)}")
        lines.extend(f"    {line}" for line in body)
    lines.extend(f"+ {key_text(key, diff.namespace)}" for key in diff.added)
    lines.extend(f"- {key_text(key, diff.namespace)}" for key in diff.removed)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--release", help="one release (default: every enabled release)")
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from")
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder holding the stack files (default: this repository)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each helm/kubectl call may take (default 120)")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    deployment = resolve_for_cluster(args.stack, root, args.charts_dir)
    if isinstance(deployment, int):
        return deployment
    names = [args.release] if args.release else list(deployment.releases)
    unknown = [n for n in names if n not in deployment.releases]
    if unknown:
        print(f"error: {unknown} not enabled in stack {args.stack}; enabled: {list(deployment.releases)}", file=sys.stderr)
        return 2
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    try:
        caps = capabilities(args.timeout)
        installed = helm_releases([r.name for r in catalog.releases], args.timeout)
    except ToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed, differing = [], []
    for name in names:
        release = deployment.releases[name]
        try:
            result = diff_release(release, deployment, installed.get((release.namespace, name)), root, caps, args.timeout)
        except (ToolError, InputError, yaml.YAMLError) as error:
            print(f"error: release {name}: {error}", file=sys.stderr)
            failed.append(name)
            continue
        if result.differs:
            differing.append(name)
            print(format_release(result), flush=True)
    if not args.release:
        # Installed releases the stack no longer enables: `up` removes them if this stack installed them.
        for entry in catalog.releases:
            if entry.name not in deployment.releases and (entry.namespace, entry.name) in installed:
                differing.append(entry.name)
                print(f"# {entry.name} (namespace {entry.namespace}): installed but not enabled in stack {args.stack}; `up` removes it if this stack installed it")
    if failed:
        print(f"diff: {len(failed)} release(s) could not be compared: {failed}", file=sys.stderr)
        return 2
    if differing:
        print(f"diff: {len(differing)} of {len(names)} release(s) differ: {differing}")
        return 1
    print(f"diff: no difference in {len(names)} release(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
