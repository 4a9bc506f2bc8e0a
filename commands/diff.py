"""Show what `up` would change inside each Helm release: objects and fields, secrets masked.

`python -m commands.diff --stack <stack> [--release NAME]` (`make diff`):
every enabled release is rendered by the program's own render
(`render.releases`: a server-side dry run against the stack's cluster, the
same cache as preview and up) and compared with the revision that runs
(`helm get manifest` and its hooks; a release not installed is all new).
Objects are matched by apiVersion, kind, namespace and name; each changed
object prints its changed leaves (`spec.replicas: 1 -> 3`,
`rules[3].verbs[1]: ...`), one per line; cluster-scoped objects have no
namespace. A release without change prints nothing.

Secrets: the render needs the stack's secrets, as `up` does (read with
`pulumi config --show-secrets`, so the passphrase must be set); they reach
Helm only through a 0600 values file. Secret data and stringData are masked
on both sides, and every secret value of the stack and of the running
revision is replaced by the mask wherever it appears: a diff never prints one.

Exit code: 0 no difference, 1 differences, 2 error (bad stack, missing
tool, unreachable cluster, a release Helm cannot render: named with Helm's
whole message; the summary line still prints).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.kubectl import cluster_facts, cluster_scoped_kinds, helm_revisions
from cli.process import ToolError
from cli.pulumi import config_with_secrets
from commands import ROOT, resolve_for_cluster
from model.catalog import load_catalog
from model.deployment import Deployment
from model.errors import entry_point
from model.manifest import CLUSTER_SCOPED_KINDS, key_text
from render.releases import Cluster, Rendered, render_each


def stack_secrets(stack: str, root: Path, deployment: Deployment, timeout_s: float) -> dict[str, str]:
    """The stack's secret config values the enabled releases read (`pulumi config --show-secrets --json`)."""
    if not deployment.secret_keys:
        return {}
    try:
        config = config_with_secrets(root, stack, timeout_s)
    except ToolError as error:
        raise ToolError(f"{error} (the render needs them, as `up` does)") from None
    found = {}
    for full, entry in config.items():
        key = full.split(":", 1)[-1]
        if key in deployment.secret_keys and isinstance(entry, dict) and entry.get("value") is not None:
            found[key] = str(entry["value"])
    return found


def format_release(result: Rendered, cluster_kinds: frozenset[str] = CLUSTER_SCOPED_KINDS) -> str:
    """The printed form of one release's differences."""
    latest = result.latest
    if latest is None:
        state = "not installed: every object is new"
    elif result.revision is None:
        state = f"Helm revision {latest[0]} is {latest[1]} and none ever deployed: every object is new"
    elif result.revision != latest[0]:
        state = f"compared with revision {result.revision} (deployed); the latest, {latest[0]}, is {latest[1]}"
    else:
        state = f"compared with revision {result.revision}"
    added, changed, removed = result.diff.counts()
    lines = [f"# {result.name} (namespace {result.namespace}; {state}): {changed} changed, {added} new, {removed} removed"]
    for key, changes in result.diff.changed.items():
        lines.append(f"~ {key_text(key, result.namespace, cluster_kinds)}")
        lines.extend(f"    {change.text()}" for change in changes)
    lines.extend(f"+ {key_text(key, result.namespace, cluster_kinds)}" for key in result.diff.added)
    lines.extend(f"- {key_text(key, result.namespace, cluster_kinds)}" for key in result.diff.removed)
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
        facts = cluster_facts(args.timeout)
        revisions = helm_revisions(args.timeout)
        kinds = CLUSTER_SCOPED_KINDS | cluster_scoped_kinds(args.timeout)
        secrets = stack_secrets(args.stack, root, deployment, args.timeout)
    except (ToolError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results, problems = render_each(root, deployment, secrets, Cluster(facts=facts, releases=revisions), names, timeout_s=args.timeout)
    differing = []
    for name in names:
        if name in problems:
            for problem in problems[name]:
                print(f"error: {problem}", file=sys.stderr)
        elif results[name].diff.differs:
            differing.append(name)
            print(format_release(results[name], kinds), flush=True)
    if not args.release:
        # Installed releases the stack no longer enables: `up` removes them if this stack installed them.
        for entry in catalog.releases:
            if entry.name not in deployment.releases and (entry.namespace, entry.name) in revisions:
                differing.append(entry.name)
                print(f"# {entry.name} (namespace {entry.namespace}): installed but not enabled in stack {args.stack}; `up` removes it if this stack installed it")
    summary = (f"diff: {len(differing)} of {len(names)} release(s) differ: {differing}" if differing
               else f"diff: no difference in {len(names)} release(s)")
    if problems:
        print(f"{summary}; {len(problems)} release(s) could not be rendered: {list(problems)}")
        return 2
    print(summary)
    return 1 if differing else 0


if __name__ == "__main__":
    entry_point(main, "diff")
