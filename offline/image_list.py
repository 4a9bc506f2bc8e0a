"""The images a stack runs: every enabled release rendered by the real `helm template`, its patches applied, and the images read from the objects.

Secrets are masked (an image never depends on a password). model/images.py
says where and how a string counts as an image; catalog/runtime-images.yaml
adds the images a chart's software starts at run time, and Chart.yaml's
`artifacthub.io/images` (or bitnami's `images`) those nothing rendered names.
Helm hooks count, and so do chart tests (`helm test` starts them at a site).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from cli.helm import show_chart, template
from cli.process import ROOT, ToolError
from model.catalog import load_catalog
from model.deployment import Deployment, ResolvedRelease, prepare
from model.errors import InputError
from model.images import RUNTIME_IMAGES, ImageUse, annotation_images, load_runtime_declarations, parse_reference, release_images, runtime_images
from model.images_lock import ImagesLock, LockedImage
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


