"""List every container image a stack runs: `make images STACK=<stack>` writes images/<stack>.lock.yaml.

Each enabled release is rendered by the real `helm template` with its
resolved values (secrets masked: an image never depends on a password) from
the chart the program installs, and its kustomize patches applied; the
images are read from those objects only (model/images.py says where and how
a string counts as an image), plus the images the chart's software starts at
run time, declared once per chart in catalog/runtime-images.yaml, and those
its Chart.yaml lists (`artifacthub.io/images`, bitnami's `images`) under a name nothing rendered.
Helm hooks count, and so do chart tests (`helm test` starts them at a site).

With `astrago-deploy:offline.registry` set, the charts are rendered without
it, so the lock holds the source references the bundle fetches; the
post-render moves each image to the registry and pins the digest `make bundle`
recorded here. Digests, sizes and platforms already in the lock are kept for
unchanged references. Same charts and values, same bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from cli.helm import show_chart, template
from cli.process import ToolError
from commands import ROOT
from model.catalog import load_catalog
from model.deployment import Deployment, ResolvedRelease, prepare
from model.errors import InputError, entry_point
from model.images import RUNTIME_IMAGES, ImageUse, annotation_images, load_runtime_declarations, parse_reference, release_images, runtime_images
from model.images_lock import ImagesLock, LockedImage, load_images_lock, lock_path, write_images_lock
from model.manifest import parse_manifest
from model.stackfile import stack_settings
from postrender.kustomize import apply_patches
from postrender.plan import check_registry

# Rendering is CPU-bound in helm; two at a time keep a laptop responsive.
WORKERS = 2
HELM_TIMEOUT_S = 120.0


def release_image_uses(release: ResolvedRelease, values: dict[str, Any], root: Path, declarations: dict[str, Any], timeout_s: float) -> list[ImageUse]:
    """Every image one release runs (see the module docstring); InputError naming the release and the cause."""
    where = f"release {release.name!r}"
    try:
        # Chart tests count: `helm test` starts them at the site too.
        rendered = template(release.name, release.chart_path, release.namespace, yaml.safe_dump(values), timeout_s, cwd=root, skip_tests=False)
        meta = show_chart(release.chart_path, timeout_s, cwd=root)
        if release.postrender and release.postrender.patches:
            rendered = apply_patches(rendered, release.postrender.patches, root, timeout_s)
    except ToolError as error:
        raise InputError(f"{where}: {error} (secrets are rendered masked)") from None
    try:
        objects = list(parse_manifest(rendered).values())
    except yaml.YAMLError as error:
        raise InputError(f"{where}: helm rendered YAML that does not parse ({error})") from None
    try:
        declared = runtime_images(declarations, release.chart_name, meta, str(RUNTIME_IMAGES))
    except ValueError as error:
        raise InputError(str(error)) from None
    uses, problems = release_images(objects, release.chart_name, declared, str(RUNTIME_IMAGES))
    if problems:
        raise InputError(*(f"{where}: {p}" for p in problems))
    shown = {parsed.name for use in uses if (parsed := parse_reference(use.reference))}
    for reference, annotation in annotation_images(meta):
        parsed = parse_reference(reference)
        if parsed and parsed.name not in shown:
            uses.append(ImageUse(reference, f"Chart.yaml annotation {annotation}", declared=True))
    return uses


def images_of(deployment: Deployment, root: Path, registry: str | None, workers: int = WORKERS, timeout_s: float = HELM_TIMEOUT_S) -> tuple[LockedImage, ...]:
    """Render every release of a resolved stack and gather its images, sorted by reference."""
    declarations = load_runtime_declarations(root)
    problems: list[str] = []
    per_release: dict[str, list[ImageUse]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="helm-template") as pool:
        futures = {name: pool.submit(release_image_uses, release, deployment.masked_values(name), root, declarations, timeout_s)
                   for name, release in deployment.releases.items()}
        for name, future in futures.items():
            try:
                per_release[name] = future.result()
            except InputError as error:
                problems.extend(error.problems)
    if problems:
        raise InputError(*problems)
    found: dict[str, dict[str, Any]] = {}
    for name, uses in per_release.items():
        for use in uses:
            record = found.setdefault(use.reference, {"releases": set(), "where": set(), "hooks_only": True})
            record["releases"].add(name)
            record["where"].add(f"{name}: {use.where}")
            record["hooks_only"] &= use.hook
    return tuple(LockedImage(reference=ref, releases=tuple(sorted(r["releases"])), found_in=tuple(sorted(r["where"])), in_hooks=r["hooks_only"])
                 for ref, r in sorted(found.items()))


def collect(stack: str, root: Path = ROOT, charts_dir: str | None = None, workers: int = WORKERS, timeout_s: float = HELM_TIMEOUT_S) -> ImagesLock:
    """Resolve a stack as the program does (without its offline registry, see the module docstring) and list its images."""
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    settings = stack_settings(root, stack, catalog, charts_dir)
    raw = settings.offline.get("registry")
    registry = check_registry(raw, f"Pulumi.{stack}.yaml: astrago-deploy:offline.registry") if raw else None
    source = dataclasses.replace(settings, offline={k: v for k, v in settings.offline.items() if k != "registry"})
    deployment = prepare(root, catalog, source, set(catalog.secret_keys()))
    return ImagesLock(stack=stack, registry=registry, images=images_of(deployment, root, registry, workers, timeout_s))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.images", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from (default: the stack's chartsDir)")
    parser.add_argument("--out", help="where to write the lock (default: images/<stack>.lock.yaml)")
    parser.add_argument("--timeout", type=float, default=HELM_TIMEOUT_S, help="seconds one `helm template` may take")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else lock_path(ROOT, args.stack)
    started = time.monotonic()
    try:
        lock = collect(args.stack, charts_dir=args.charts_dir, timeout_s=args.timeout)
    except (InputError, ToolError) as error:
        print(f"images: stack {args.stack}:\n{error}", file=sys.stderr)
        return 2
    previous = None
    if out.is_file():
        try:
            previous = load_images_lock(out)
        except InputError as error:
            print(f"note: the previous lock is not kept ({error}); digests are recorded again by `make bundle`")
    lock = lock.keep_fetched(previous)
    write_images_lock(lock, out)
    for line in lock.warnings():
        print(line)
    releases = {r for i in lock.images for r in i.releases}
    pinned = sum(1 for i in lock.images if i.digest)
    where = f"; site registry {lock.registry}" if lock.registry else "; no astrago-deploy:offline.registry set"
    print(f"images: {len(lock.images)} images of {len(releases)} releases ({pinned} with a digest){where}; {out} ({time.monotonic() - started:.2f}s)")
    return 0


if __name__ == "__main__":
    entry_point(main, "images")
