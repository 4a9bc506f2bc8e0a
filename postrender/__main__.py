"""Helm's post-renderer: `python -m postrender --release R --namespace N [--patches DIR] [--registry REG --lock FILE]`.

Run from the project root by the release's wrapper (postrender/plan.py):
manifests on stdin, the manifests to install on stdout. A refusal exits 1
with the kustomization, patch or image at fault on stderr, which Helm shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.process import ToolError
from model.errors import InputError
from postrender.kustomize import PATCHES_DIR, release_patches
from postrender.plan import check_registry, refusal
from postrender.stream import post_render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postrender", description="Helm post-renderer: manifests on stdin, post-rendered manifests on stdout.")
    parser.add_argument("--release", required=True)
    parser.add_argument("--namespace", required=True, help="the release's namespace")
    parser.add_argument("--patches", action="store_true", help=f"apply the release's kustomization ({PATCHES_DIR}/<release>/)")
    parser.add_argument("--registry", help="move every image to this registry")
    parser.add_argument("--lock", help="the stack's images lock: the digest every image is pinned to")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        patches = release_patches(root, args.release, declared=True) if args.patches else None
        registry = check_registry(args.registry, "--registry") if args.registry else None
        sys.stdout.write(post_render(sys.stdin.read(), root, patches, registry, args.lock, args.release))
    except (InputError, ToolError) as error:
        print(refusal(args.release, error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
