"""Print the fully resolved Helm values of a stack's releases, secrets masked.

Reads the stack file directly (no passphrase, no engine), so it works on any
machine: `make values STACK=prod RELEASE=astrago`.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from commands import ROOT
from model.deployment import resolve_stack
from model.errors import InputError, entry_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--release", help="one release (default: every enabled release)")
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from")
    args = parser.parse_args(argv)
    try:
        deployment = resolve_stack(args.stack, ROOT, charts_dir=args.charts_dir)
    except InputError as error:
        print(f"error: stack {args.stack}:\n{error}", file=sys.stderr)
        return 2
    names = [args.release] if args.release else list(deployment.releases)
    unknown = [n for n in names if n not in deployment.releases]
    if unknown:
        print(f"error: {unknown} not enabled in stack {args.stack}; enabled: {list(deployment.releases)}", file=sys.stderr)
        return 2
    for name in names:
        release = deployment.releases[name]
        print(f"# {name} ({release.tier}, namespace {release.namespace}, chart {release.chart_name} {release.chart_version})")
        print(yaml.safe_dump({name: deployment.masked_values(name)}, sort_keys=True), end="")
    return 0


if __name__ == "__main__":
    entry_point(main, "values")
