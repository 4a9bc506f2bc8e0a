"""Compare two stacks: releases enabled in one only, and per release what resolves differently.

  python -m commands.envdiff dev prod [--release loki-stack] [--json] [--charts-dir DIR]

Both stacks are resolved from their stack files as the program resolves them
(commands.values.resolve_stack: inheritance, base values, platform settings,
endpoints, overrides). Secrets are masked on both sides, so they compare
equal: their values live encrypted under each stack's own passphrase.
Exit status: 0 when the stacks resolve identically, 1 when they differ, 2
on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commands import ROOT
from model import structdiff
from model.deployment import Deployment, ResolvedRelease, resolve_stack
from model.errors import InputError, entry_point
from model.structdiff import show


@dataclass(frozen=True)
class Difference:
    """One path whose resolved value differs; values shown as JSON, `(absent)` when unset."""

    path: str
    a: str
    b: str


@dataclass
class EnvDiff:
    """What differs between stacks a and b."""

    a: str
    b: str
    only_a: list[str] = field(default_factory=list)
    """Releases enabled in a and not in b."""
    only_b: list[str] = field(default_factory=list)
    releases: dict[str, list[Difference]] = field(default_factory=dict)
    """Release enabled in both -> its differences (chart, namespace, values)."""

    @property
    def identical(self) -> bool:
        return not (self.only_a or self.only_b or self.releases)


def _release_facts(release: ResolvedRelease, values: dict[str, Any]) -> dict[str, Any]:
    """What makes two releases differ: chart, namespace and the resolved values (secrets masked)."""
    return {"chart": {"name": release.chart_name, "version": release.chart_version, "digest": release.chart_digest},
            "namespace": release.namespace, "values": values}


def compare(a_name: str, a: Deployment, b_name: str, b: Deployment, only: str | None = None) -> EnvDiff:
    """The differences between two resolved stacks (model.structdiff; secrets masked on both sides)."""
    diff = EnvDiff(a=a_name, b=b_name)
    names_a, names_b = set(a.releases), set(b.releases)
    if only:
        names_a, names_b = names_a & {only}, names_b & {only}
    diff.only_a = sorted(names_a - names_b)
    diff.only_b = sorted(names_b - names_a)
    for name in sorted(names_a & names_b):
        left = _release_facts(a.releases[name], a.masked_values(name))
        right = _release_facts(b.releases[name], b.masked_values(name))
        changes = [Difference(c.path, show(c.before), show(c.after)) for c in structdiff.diff(left, right, expand=True)]
        if changes:
            diff.releases[name] = changes
    return diff


def diff_stacks(a: str, b: str, root: Path = ROOT, charts_dir: str | None = None, only: str | None = None) -> EnvDiff:
    """Resolve both stacks from their files and compare them; raise InputError naming the stack at fault."""
    resolved: dict[str, Deployment] = {}
    problems: list[str] = []
    for stack in (a, b):
        if not (root / f"Pulumi.{stack}.yaml").is_file():
            known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))
            problems.append(f"Pulumi.{stack}.yaml: no such stack file in {root}; stacks: {known}")
            continue
        try:
            # A comparison reads no archive: it works on a checkout without synced charts.
            resolved[stack] = resolve_stack(stack, root, charts_dir, verify_charts=False)
        except InputError as error:
            problems.extend(f"stack {stack}: {p}" for p in error.problems)
    if problems:
        raise InputError(*problems)
    if only and only not in resolved[a].releases and only not in resolved[b].releases:
        raise InputError(f"--release {only}: enabled in neither {a} nor {b}")
    return compare(a, resolved[a], b, resolved[b], only)


def render_text(diff: EnvDiff) -> str:
    if diff.identical:
        return f"{diff.a} and {diff.b} resolve identically\n"
    lines = []
    if diff.only_a:
        lines.append(f"enabled only in {diff.a}: {', '.join(diff.only_a)}")
    if diff.only_b:
        lines.append(f"enabled only in {diff.b}: {', '.join(diff.only_b)}")
    for name, changes in diff.releases.items():
        lines.append(f"{name}:")
        width = max(len(c.path) for c in changes)
        lines += [f"  {c.path:<{width}}  {diff.a}: {c.a}  {diff.b}: {c.b}" for c in changes]
    return "\n".join(lines) + "\n"


def render_json(diff: EnvDiff) -> str:
    data = {
        "a": diff.a, "b": diff.b, "identical": diff.identical,
        "onlyIn": {diff.a: diff.only_a, diff.b: diff.only_b},
        "releases": {name: [{"path": c.path, diff.a: c.a, diff.b: c.b} for c in changes] for name, changes in diff.releases.items()},
    }
    return json.dumps(data, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="stack name (Pulumi.<a>.yaml)")
    parser.add_argument("b", help="stack name (Pulumi.<b>.yaml)")
    parser.add_argument("--release", help="compare one release only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from (default: each stack's)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        diff = diff_stacks(args.a, args.b, args.root, args.charts_dir, args.release)
    except InputError as error:
        print(f"error: cannot compare {args.a} and {args.b}:\n{error}", file=sys.stderr)
        return 2
    print(render_json(diff) if args.json else render_text(diff), end="")
    return 0 if diff.identical else 1


if __name__ == "__main__":
    entry_point(main, "envdiff")
