"""Turn TIER=/RELEASE= into `--target` options for pulumi, refusing unknown names.

Prints nothing when neither is given, so the run covers the whole stack.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.catalog import load_catalog
from model.errors import InputError
from model.stackfile import PROJECT

ROOT = Path(__file__).resolve().parent.parent
# The component chain of every Helm release; see components/.
CHAIN = "astrago:platform:Platform$astrago:tier:Tier$astrago:local_release:LocalRelease"


def target_urns(stack: str, tier: str, release: str) -> list[str]:
    """URN patterns selecting a tier's or a release's Helm releases and hooks."""
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    releases = catalog.by_name()
    if tier and tier not in catalog.tiers:
        raise InputError(f"TIER={tier} is not a tier; choose one of {list(catalog.tiers)}")
    if release and release not in releases:
        raise InputError(f"RELEASE={release} is not in catalog/releases.yaml; choose one of {sorted(releases)}")
    chosen = [r for r in catalog.releases if (not tier or r.tier == tier) and (not release or r.name == release)]
    if not chosen:
        raise InputError(f"TIER={tier} and RELEASE={release} select no release")
    prefix = f"urn:pulumi:{stack}::{PROJECT}::{CHAIN}"
    urns = []
    for r in chosen:
        # Exact names: a glob on "keycloak-*" would also select keycloak-addons.
        urns.append(f"{prefix}$kubernetes:helm.sh/v3:Release::astrago-{r.tier}-{r.name}-release")
        urns.extend(f"{prefix}$pulumi-python:dynamic:Resource::astrago-{r.tier}-{r.name}-{h.name}" for h in r.hooks)
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
        urns = target_urns(args.stack, args.tier, args.release)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # No quotes: the Makefile expands this unquoted; URNs hold no spaces.
    print(" ".join(f"--target {urn}" for urn in urns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
