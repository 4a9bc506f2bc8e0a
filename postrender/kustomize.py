"""A release's patches are a kustomization, applied by the pinned kubectl's kustomize.

``charts/patches/<release>/kustomization.yaml`` lists ``patches`` (kustomize's
own format: ``path`` or inline ``patch``, JSON 6902 or strategic merge, an
optional ``target`` with group, version, kind, name, namespace,
``labelSelector``, ``annotationSelector``). The post-render adds the rendered
chart as the one resource and runs ``kubectl kustomize``: kustomize merges
(merge keys and strategies from the Kubernetes schema; custom resources'
lists are replaced whole, as the API server's merge would), we do not.

What kustomize does not do and this module adds: a kustomization that only
patches (no other resources, generators or transformers), every file of the
folder listed, and every patch with a target matching at least one object
(kustomize skips such a patch silently). The last is checked by kustomize
itself: a probe patch with the same target adds an annotation, and the
objects that carry it are the ones the patch applies to.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.kubectl import kustomize
from cli.process import ToolError, tool
from model.charts import chart_digest
from model.errors import InputError
from model.manifest import parse_manifest

PATCHES_DIR = Path("charts/patches")
KUSTOMIZATION = "kustomization.yaml"
ALLOWED_KEYS = ("apiVersion", "kind", "patches")
PATCH_KEYS = ("path", "patch", "target", "options")
TARGET_KEYS = ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")
RENDERED = "astrago-helm-rendered.yaml"
PROBE = "astrago.io/patch-probe-"
KUSTOMIZE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PatchSet:
    """A release's checked kustomization."""

    folder: str
    """charts/patches/<release>, relative to the project root."""
    digest: str
    """sha256 over the folder's files: any edit changes it (it is in the release's description)."""
    patches: tuple[dict[str, Any], ...]
    """The kustomization's `patches`, as written."""

    def describe(self, index: int) -> str:
        """`charts/patches/x/kustomization.yaml patches[1] (path: svc.yaml, target {kind: Service, name: x})`."""
        patch = self.patches[index]
        parts = [f"path: {patch['path']}"] if "path" in patch else ["inline patch"]
        if patch.get("target"):
            parts.append("target {" + ", ".join(f"{k}: {v}" for k, v in patch["target"].items()) + "}")
        return f"{self.folder}/{KUSTOMIZATION} patches[{index}] ({', '.join(parts)})"


def check_patch_folders(root: Path, releases: Iterable[str]) -> list[str]:
    """Problems with folders under charts/patches that name no catalog release (a typo would be silently ignored)."""
    base = root / PATCHES_DIR
    if not base.is_dir():
        return []
    known = set(releases)
    return [
        f"{PATCHES_DIR / entry.name}/ names no release of catalog/releases.yaml; rename it to the release it patches (known: {sorted(known)})"
        for entry in sorted(base.iterdir()) if entry.is_dir() and not entry.name.startswith(".") and entry.name not in known
    ]


def release_patches(root: Path, release: str, declared: bool) -> PatchSet | None:
    """Check a release's patch folder against its catalog flag and its kustomization's shape.

    None for a release without patches; InputError naming the file and what is wrong.
    What the patches do to the chart is checked by `apply_patches` (at preview, on the rendered chart).
    """
    folder = PATCHES_DIR / release
    files = sorted(p for p in (root / folder).rglob("*") if p.is_file() and not p.name.startswith(".")) if (root / folder).is_dir() else []
    if not declared:
        if files:
            raise InputError(f"{folder}/ holds patches but release {release!r} does not set `patches: true` in catalog/releases.yaml; set it so they are applied (or remove the folder)")
        return None
    where = f"{folder}/{KUSTOMIZATION}"
    if not (root / where).is_file():
        raise InputError(f"catalog/releases.yaml: release {release!r} sets `patches: true` but {where} does not exist; write one (charts/patches/README.md) or remove `patches: true`")
    try:
        data = yaml.safe_load((root / where).read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{where}: not valid YAML: {error}") from None
    problems = _shape_problems(data, where)
    if problems:
        raise InputError(*problems)
    patches = tuple(data["patches"])
    listed = {(root / folder / p["path"]).resolve() for p in patches if "path" in p}
    inside = (root / folder).resolve()
    problems = [f"{where}: patches[{i}].path {p['path']!r} is not a file of {folder}/ (kustomize reads patches only from the folder)"
                for i, p in enumerate(patches)
                if "path" in p and not ((root / folder / p["path"]).resolve().is_relative_to(inside) and (root / folder / p["path"]).is_file())]
    problems += [f"{f.relative_to(root).as_posix()} is not listed in {where} `patches`; list it (`- path: {f.relative_to(root / folder).as_posix()}`) or remove it"
                 for f in files if f.name != KUSTOMIZATION and f.resolve() not in listed]
    if problems:
        raise InputError(*problems)
    return PatchSet(folder=folder.as_posix(), digest=chart_digest(root / folder), patches=patches)


def _shape_problems(data: Any, where: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where}: must be a Kustomization map with `patches`"]
    problems = []
    extra = sorted(set(data) - set(ALLOWED_KEYS))
    if extra:
        problems.append(f"{where}: {extra} not allowed: the rendered chart is the only resource and patches the only change; "
                        f"allowed keys: {list(ALLOWED_KEYS)} (patchesStrategicMerge and patchesJson6902 are written as `patches`)")
    if data.get("kind", "Kustomization") != "Kustomization":
        problems.append(f"{where}: kind is {data.get('kind')!r}; it must be Kustomization")
    patches = data.get("patches")
    if not isinstance(patches, list) or not patches:
        return [*problems, f"{where}: `patches` must be a non-empty list of {{path | patch, target?}}"]
    for index, patch in enumerate(patches):
        at = f"{where}: patches[{index}]"
        if not isinstance(patch, dict):
            problems.append(f"{at} must be a map with `path` or `patch`")
            continue
        bad = sorted(set(patch) - set(PATCH_KEYS))
        if bad:
            problems.append(f"{at}: unknown key(s) {bad}; allowed: {list(PATCH_KEYS)}")
        if ("path" in patch) == ("patch" in patch):
            problems.append(f"{at}: give exactly one of `path` (a file of the folder) and `patch` (inline)")
        problems += [f"{at}.{key} must be a string" for key in ("path", "patch") if key in patch and not isinstance(patch[key], str)]
        target = patch.get("target")
        if target is not None:
            if not isinstance(target, dict) or not target:
                problems.append(f"{at}.target must be a map of {list(TARGET_KEYS)}")
            else:
                problems += [f"{at}.target.{k}: unknown; allowed: {list(TARGET_KEYS)}" for k in sorted(set(target) - set(TARGET_KEYS))]
                problems += [f"{at}.target.{k} must be a string" for k, v in target.items() if not isinstance(v, str)]
    return problems




def apply_patches(manifest: str, patches: PatchSet, root: Path, timeout_s: float = KUSTOMIZE_TIMEOUT_S) -> str:
    """The rendered manifests with the release's kustomization applied by kubectl kustomize.

    Raises InputError naming the kustomization and the patch when kustomize
    refuses it or when a patch's target matches no rendered object.
    """
    if not manifest.strip():
        raise InputError(f"{patches.folder}/{KUSTOMIZATION}: the chart renders no object to patch")
    with tempfile.TemporaryDirectory(prefix="astrago-kustomize-") as scratch:
        work = Path(scratch) / "patches"
        shutil.copytree(root / patches.folder, work)
        (work / RENDERED).write_text(manifest)
        probed = []
        for index, patch in enumerate(patches.patches):
            if patch.get("target"):
                probe = {"apiVersion": "v1", "kind": "Probe", "metadata": {"name": "probe", "annotations": {f"{PROBE}{index}": "1"}}}
                probed.append({"target": patch["target"], "patch": yaml.safe_dump(probe)})
            probed.append(patch)
        _write(work, probed)
        out = _run(work, patches, timeout_s)
        objects = list(parse_manifest(out).values())
        hit = {key.removeprefix(PROBE) for obj in objects for key in ((obj.get("metadata") or {}).get("annotations") or {}) if str(key).startswith(PROBE)}
        missed = [i for i, p in enumerate(patches.patches) if p.get("target") and str(i) not in hit]
        if missed:
            rendered = [f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}" for o in objects]
            shown = ", ".join(rendered[:30]) + (f" and {len(rendered) - 30} more" if len(rendered) > 30 else "")
            raise InputError(*(f"{patches.describe(i)}: the target matches no object the chart rendered; rendered: {shown}" for i in missed))
        _write(work, list(patches.patches))
        return _run(work, patches, timeout_s)


def _write(work: Path, patches: list[dict[str, Any]]) -> None:
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [RENDERED], "sortOptions": {"order": "fifo"}, "patches": patches}
    (work / KUSTOMIZATION).write_text(yaml.safe_dump(kustomization, sort_keys=False))


def _run(work: Path, patches: PatchSet, timeout_s: float) -> str:
    tool("kubectl")  # missing: ToolError with the `make setup` hint, not a patch problem
    try:
        return kustomize(work, timeout_s)
    except ToolError as error:
        text = str(error).replace(str(work), patches.folder)
        raise InputError(f"{patches.folder}/{KUSTOMIZATION}: kustomize refused the patches: {text}") from None
