"""Kustomize patches and the digest-pinned air-gap rewrite, through real Helm, the pinned kubectl and the real engine.

A throwaway stack of the local stack's settings, in a project copy whose
astrago release carries a kustomization (a strategic merge patch adding a
label and an annotation to the core Deployment, a JSON 6902 patch on the
proxy Service's nodePort, a label-selector patch), with an offline registry
set and an images lock whose digests stand for what `make bundle` records.
After `up` the cluster holds the patched fields and every image of every
deployed workload is `<registry>/...@<the lock's digest>`. A patch that
matches nothing, an image the lock lacks and a broken kustomization each fail
the preview, naming it, and change nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from model.images_lock import ImagesLock, lock_path, write_images_lock
from offline.image_list import collect
from postrender.kustomize import PATCHES_DIR, release_patches
from postrender.plan import plan_postrender, write_wrapper
from tests.support.engine import ROOT, TOOLS, E2EStack, dispose, new_stack, require

REGISTRY = "registry.e2e.invalid:5000"
# Not the local stack's 30080, so this test never collides with another deployment of the cluster.
NODE_PORT = 30181
PATCH_DIR = PATCHES_DIR / "astrago"
CORE_PATCH: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "astrago-core", "labels": {"astrago.io/patched": "strategic-merge"}},
    "spec": {"template": {"metadata": {"annotations": {"astrago.io/patch-note": "first"}}}},
}
PROXY_PATCH = [
    {"op": "test", "path": "/spec/ports/0/port", "value": 80},
    {"op": "replace", "path": "/spec/ports/0/nodePort", "value": NODE_PORT},
]
PATCHES: list[dict[str, Any]] = [
    {"path": "core.yaml"},
    {"path": "proxy-nodeport.yaml", "target": {"version": "v1", "kind": "Service", "name": "astrago-proxy"}},
    {"target": {"kind": "Deployment", "labelSelector": "app.kubernetes.io/component=core"},
     "patch": yaml.safe_dump([{"op": "add", "path": "/metadata/labels/astrago.io~1selected", "value": "by-label"}])},
]
# Namespaces the local stack deploys workloads into.
NAMESPACES = ("astrago", "gpu-operator", "keycloak")


def _patched_project(project: Path, patches: list[dict[str, Any]] | None = None) -> None:
    """Declare patches for astrago in the copy's catalog and write its kustomization."""
    catalog_file = project / "catalog" / "releases.yaml"
    catalog = yaml.safe_load(catalog_file.read_text())
    for release in catalog["releases"]:
        if release["name"] == "astrago":
            release["patches"] = True
    catalog_file.write_text(yaml.safe_dump(catalog, sort_keys=False))
    folder = project / PATCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "core.yaml").write_text(yaml.safe_dump(CORE_PATCH, sort_keys=False))
    (folder / "proxy-nodeport.yaml").write_text(yaml.safe_dump(PROXY_PATCH, sort_keys=False))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                                                "patches": patches if patches is not None else PATCHES}, sort_keys=False))


def digest_of(reference: str) -> str:
    """The digest this test records for an image, as `make bundle` would after fetching it (kwok pulls nothing)."""
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def _fetched_lock(project: Path, stack: str) -> ImagesLock:
    """`make images` of the stack, then the digests and sizes `make bundle` fills in."""
    lock = collect(stack, project)
    for image in lock.images:
        lock = lock.with_fetched(image.reference, digest=digest_of(image.reference), size=1000)
    write_images_lock(lock, lock_path(project, stack))
    return lock


def test_helm_runs_the_wrapper_as_its_post_renderer(project: Path) -> None:
    """Helm's own exec contract (manifests on stdin, result on stdout), as the provider uses it."""
    helm = require(TOOLS / "helm", "make setup")
    _patched_project(project)
    shutil.copy2(ROOT / "Pulumi.local.yaml", project / "Pulumi.local.yaml")
    (project / "Pulumi.e2e-helm.yaml").write_text(yaml.safe_dump({"config": {"astrago-deploy:inherits": "local", "astrago-deploy:offline": {"registry": REGISTRY}}}))
    _fetched_lock(project, "e2e-helm")
    spec = plan_postrender(project, "e2e-helm", "astrago", "astrago", release_patches(project, "astrago", declared=True), REGISTRY)
    assert spec is not None
    write_wrapper(spec)
    out = subprocess.run(
        [str(helm), "template", "astrago", "charts/own/astrago", "--namespace", "astrago", "--post-renderer", spec.wrapper],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}
    core = docs[("Deployment", "astrago-core")]
    assert core["metadata"]["labels"]["astrago.io/patched"] == "strategic-merge" and core["metadata"]["labels"]["astrago.io/selected"] == "by-label"
    assert docs[("Service", "astrago-proxy")]["spec"]["ports"][0]["nodePort"] == NODE_PORT
    images = [c["image"] for d in docs.values() if d["kind"] in ("Deployment", "StatefulSet") for c in d["spec"]["template"]["spec"]["containers"]]
    assert images and all(i.startswith(REGISTRY + "/") and "@sha256:" in i for i in images), images


def _images(stack: E2EStack) -> list[tuple[str, str]]:
    """(object, image) of every pod and every CronJob's job template in the stack's namespaces."""
    found = []
    for namespace in NAMESPACES:
        pods = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        for pod in pods:
            for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
                found.append((f"pod {namespace}/{pod['metadata']['name']}", container["image"]))
        cronjobs = json.loads(stack.kubectl("get", "cronjobs", "-n", namespace, "-o", "json").stdout)["items"]
        for job in cronjobs:
            for container in job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
                found.append((f"cronjob {namespace}/{job['metadata']['name']}", container["image"]))
    return found


def test_patches_and_pinned_images_reach_the_cluster(project: Path, engine_env: dict[str, str]) -> None:
    _patched_project(project)
    stack = new_stack(project, engine_env, "local", {"offline": {"registry": REGISTRY}}, prefix="e2e-patches")
    try:
        # Without an images lock carrying digests the preview refuses the stack, naming what to run.
        with pytest.raises(auto.CommandError) as unlocked:
            stack.stack.preview()
        assert f"images/{stack.name}.lock.yaml does not exist: run `make images STACK={stack.name}`" in str(unlocked.value), str(unlocked.value)
        lock = _fetched_lock(project, stack.name)
        result = stack.stack.up(on_output=print, message="e2e: patches and pinned registry")
        assert result.summary.result == "succeeded", result.stderr

        core = json.loads(stack.kubectl("get", "deploy", "astrago-core", "-n", "astrago", "-o", "json").stdout)
        assert core["metadata"]["labels"]["astrago.io/patched"] == "strategic-merge", core["metadata"]["labels"]
        assert core["metadata"]["labels"]["astrago.io/selected"] == "by-label", "the label-selector patch applied"
        assert core["metadata"]["labels"]["app.kubernetes.io/component"] == "core", "the chart's own labels stay"
        assert core["spec"]["template"]["metadata"]["annotations"]["astrago.io/patch-note"] == "first"
        assert "checksum/config" in core["spec"]["template"]["metadata"]["annotations"], "the chart's own annotation stays"
        proxy = json.loads(stack.kubectl("get", "svc", "astrago-proxy", "-n", "astrago", "-o", "json").stdout)
        assert proxy["spec"]["ports"][0]["nodePort"] == NODE_PORT, proxy["spec"]["ports"]

        images = _images(stack)
        kinds = {what.split()[0] for what, _ in images}
        assert {"pod", "cronjob"} <= kinds and len(images) >= 6, f"expected the product's pods and the exporter's CronJob: {images}"
        pinned = {lock.site_reference(i) + "@" + str(i.digest) for i in lock.images}
        outside = [(what, image) for what, image in images if image not in pinned]
        assert not outside, f"images not pinned to {REGISTRY} at the lock's digest: {outside}"
        # The exporter's chart renders it at the registry (global.imageRegistry); the post-render pins it to the source's digest.
        exporter = f"{REGISTRY}/astrago/gpu-process-exporter:1.0.0@{digest_of('docker.io/astrago/gpu-process-exporter:1.0.0')}"
        assert ("cronjob gpu-operator/gpu-process-exporter", exporter) in images, images

        history = json.loads(stack.helm("history", "astrago", "-n", "astrago", "-o", "json"))
        assert "; patches sha256:" in history[-1]["description"] and f"images from {REGISTRY} pinned sha256:" in history[-1]["description"], history[-1]

        # The wrapper's path is relative to the project, so a second preview is clean.
        again = stack.stack.preview(expect_no_changes=True)
        assert set((again.change_summary or {}).keys()) <= {"same"}, again.change_summary

        # Editing a patch is an update of that release only.
        edit = copy.deepcopy(CORE_PATCH)
        edit["spec"]["template"]["metadata"]["annotations"]["astrago.io/patch-note"] = "second"
        (project / PATCH_DIR / "core.yaml").write_text(yaml.safe_dump(edit, sort_keys=False))
        edited = stack.stack.preview(diff=True)
        assert (edited.change_summary or {}).get(auto.OpType.UPDATE) == 1, edited.change_summary
        assert "patches sha256:" in edited.stdout

        # A patch whose target matches nothing fails the preview naming the patch and its target; `up` changes nothing.
        missing = copy.deepcopy(PATCHES)
        missing[1]["target"]["name"] = "astrago-proxi"
        _patched_project(project, missing)
        with pytest.raises(auto.CommandError) as failed:
            stack.stack.preview()
        assert ("charts/patches/astrago/kustomization.yaml patches[1] (path: proxy-nodeport.yaml, target {version: v1, kind: Service, name: astrago-proxi}): "
                "the target matches no object the chart rendered") in str(failed.value), str(failed.value)
        with pytest.raises(auto.CommandError):
            stack.stack.up(on_output=print, message="e2e: a patch that matches nothing")
        status = json.loads(stack.helm("status", "astrago", "-n", "astrago", "-o", "json"))
        assert status["info"]["status"] == "deployed" and status["version"] == 1, status["info"]

        # An image the lock does not hold fails the preview naming it.
        _patched_project(project)
        trimmed = ImagesLock(lock.stack, lock.registry, tuple(i for i in lock.images if "gpu-process-exporter" not in i.reference))
        write_images_lock(trimmed, lock_path(project, stack.name))
        with pytest.raises(auto.CommandError) as unpinned:
            stack.stack.preview()
        assert (f"release 'gpu-process-exporter': CronJob gpu-process-exporter spec.jobTemplate.spec.template.spec.containers[0].image: "
                f"image {REGISTRY}/astrago/gpu-process-exporter:1.0.0 is not in images/{stack.name}.lock.yaml") in str(unpinned.value), str(unpinned.value)
    finally:
        dispose(stack)


def test_a_broken_kustomization_fails_at_preview_and_nothing_is_deployed(project: Path, engine_env: dict[str, str]) -> None:
    _patched_project(project)
    (project / PATCH_DIR / "kustomization.yaml").write_text("patches: [\n")
    stack = new_stack(project, engine_env, "local", {}, prefix="e2e-badpatch")
    try:
        with pytest.raises(auto.CommandError) as previewed:
            stack.stack.preview()
        message = str(previewed.value)
        assert "nothing was changed" in message and "charts/patches/astrago/kustomization.yaml: not valid YAML" in message, message

        with pytest.raises(auto.CommandError) as applied:
            stack.stack.up(on_output=print, message="e2e: a broken kustomization")
        assert "charts/patches/astrago/kustomization.yaml" in str(applied.value)
        resources = (stack.stack.export_stack().deployment or {}).get("resources") or []
        assert [r["type"] for r in resources if r["type"] != "pulumi:pulumi:Stack"] == [], "the engine recorded resources"
        assert json.loads(stack.helm("list", "-n", "astrago", "-o", "json")) == [], "a Helm release was installed"
    finally:
        dispose(stack)
