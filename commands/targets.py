"""Turn TIER=/RELEASE= into `--target` options for pulumi, refusing unknown names.

Prints nothing when neither is given, so the run covers the whole stack.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commands import ROOT
from model.catalog import load_catalog
from model.deployment import enabled_releases
from model.errors import InputError, entry_point
from model.identity import hook_urn, release_urn
from model.stackfile import stack_settings


def stack_enabled(stack: str, root: Path = ROOT) -> set[str]:
    """The releases a stack file enables (with what it inherits)."""
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    return enabled_releases(catalog, stack_settings(root, stack, catalog))


def target_urns(stack: str, tier: str, release: str, enabled: set[str]) -> list[str]:
    """Exact URNs of the Helm releases and hooks a tier or a release selects, among the enabled ones."""
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    releases = catalog.by_name()
    if tier and tier not in catalog.tiers:
        raise InputError(f"TIER={tier} is not a tier; choose one of {list(catalog.tiers)}")
    if release and release not in releases:
        raise InputError(f"RELEASE={release} is not in catalog/releases.yaml; choose one of {sorted(releases)}")
    if release and release not in enabled:
        raise InputError(f"RELEASE={release} is not enabled in stack {stack}; enabled: {sorted(enabled)}")
    chosen = [r for r in catalog.releases if r.name in enabled and (not tier or r.tier == tier) and (not release or r.name == release)]
    if not chosen:
        raise InputError(f"TIER={tier} selects no release enabled in stack {stack}")
    urns = []
    for r in chosen:
        # Exact names: a glob on "keycloak-*" would also select keycloak-addons.
        urns.append(release_urn(stack, r.tier, r.name))
        urns.extend(hook_urn(stack, r.tier, r.name, h.name) for h in r.hooks)
    return urns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--tier", default="")
    parser.add_argument("--release", default="")
    args = parser.parse_args(argv)
    if not args.tier and not args.release:
        return 0
    try:
        urns = target_urns(args.stack, args.tier, args.release, stack_enabled(args.stack))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # No quotes: the Makefile expands this unquoted; URNs hold no spaces.
    print(" ".join(f"--target {urn}" for urn in urns))
    return 0


if __name__ == "__main__":
    entry_point(main, "targets")
