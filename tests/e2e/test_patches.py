"""Post-render patches and the air-gap image rewrite, through real Helm and the real engine.

A throwaway stack of the local stack's settings, in a project copy whose
astrago release carries a strategic merge patch (a label and an annotation on
the core Deployment) and a JSON 6902 patch (the proxy Service's nodePort), with
an offline registry set: after `up` the cluster holds the patched fields and
every image of every deployed workload comes from the registry. A broken patch
file fails the preview, naming the file, and `up` deploys nothing.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from model.patches import PATCHES_DIR, release_patches
from model.postrender import plan_postrender, write_wrapper
from tests.e2e.conftest import TOOLS, E2EStack, dispose, new_stack, require

REGISTRY = "registry.e2e.invalid:5000"
# Not the local stack's 30080, so this test never collides with another deployment of the cluster.
NODE_PORT = 30181
PATCH_DIR = PATCHES_DIR / "astrago"
CORE_PATCH: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "astrago-core", "labels": {"astrago.io/patched": "strategic-merge"}},
    "spec": {"template": {"metadata": {"annotations": {"astrago.io/patch-note": "first"}}}},
}
PROXY_PATCH: dict[str, Any] = {
    "target": {"version": "v1", "kind": "Service", "name": "astrago-proxy"},
    "patch": [
        {"op": "test", "path": "/spec/ports/0/port", "value": 80},
        {"op": "replace", "path": "/spec/ports/0/nodePort", "value": NODE_PORT},
    ],
}
# Namespaces the local stack deploys workloads into.
NAMESPACES = ("astrago", "gpu-operator", "keycloak")


def _patched_project(project: Path, files: dict[str, Any]) -> None:
    """Declare patches for astrago in the copy's catalog and write the patch files."""
    catalog_file = project / "catalog" / "releases.yaml"
    catalog = yaml.safe_load(catalog_file.read_text())
    for release in catalog["releases"]:
        if release["name"] == "astrago":
            release["patches"] = True
    catalog_file.write_text(yaml.safe_dump(catalog, sort_keys=False))
    folder = project / PATCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))


def test_helm_runs_the_wrapper_as_its_post_renderer(project: Path) -> None:
    """Helm's own exec contract (manifests on stdin, result on stdout), as the provider uses it."""
    helm = require(TOOLS / "helm", "make setup")
    _patched_project(project, {"10-core-label.yaml": CORE_PATCH, "20-proxy-nodeport.yaml": PROXY_PATCH})
    spec = plan_postrender(project, "e2e-helm", "astrago", "astrago", release_patches(project, "astrago", declared=True), REGISTRY)
    assert spec is not None
    write_wrapper(spec)
    out = subprocess.run(
        [str(helm), "template", "astrago", "charts/own/astrago", "--namespace", "astrago", "--post-renderer", spec.wrapper],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}
    assert docs[("Deployment", "astrago-core")]["metadata"]["labels"]["astrago.io/patched"] == "strategic-merge"
    assert docs[("Service", "astrago-proxy")]["spec"]["ports"][0]["nodePort"] == NODE_PORT
    images = [c["image"] for d in docs.values() if d["kind"] in ("Deployment", "StatefulSet") for c in d["spec"]["template"]["spec"]["containers"]]
    assert images and all(i.startswith(REGISTRY + "/") for i in images), images


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


def test_patches_and_registry_reach_the_cluster(project: Path, engine_env: dict[str, str]) -> None:
    _patched_project(project, {"10-core-label.yaml": CORE_PATCH, "20-proxy-nodeport.yaml": PROXY_PATCH})
    stack = new_stack(project, engine_env, "local", {"offline": {"registry": REGISTRY}}, prefix="e2e-patches")
    try:
        result = stack.stack.up(on_output=print, message="e2e: patches and registry")
        assert result.summary.result == "succeeded", result.stderr

        core = json.loads(stack.kubectl("get", "deploy", "astrago-core", "-n", "astrago", "-o", "json").stdout)
        assert core["metadata"]["labels"]["astrago.io/patched"] == "strategic-merge", core["metadata"]["labels"]
        assert core["metadata"]["labels"]["app.kubernetes.io/component"] == "core", "the chart's own labels stay"
        assert core["spec"]["template"]["metadata"]["annotations"]["astrago.io/patch-note"] == "first"
        assert "checksum/config" in core["spec"]["template"]["metadata"]["annotations"], "the chart's own annotation stays"
        proxy = json.loads(stack.kubectl("get", "svc", "astrago-proxy", "-n", "astrago", "-o", "json").stdout)
        assert proxy["spec"]["ports"][0]["nodePort"] == NODE_PORT, proxy["spec"]["ports"]

        images = _images(stack)
        kinds = {what.split()[0] for what, _ in images}
        assert {"pod", "cronjob"} <= kinds and len(images) >= 6, f"expected the product's pods and the exporter's CronJob: {images}"
        outside = [(what, image) for what, image in images if not image.startswith(REGISTRY + "/")]
        assert not outside, f"images not from {REGISTRY}: {outside}"
        # gpu-process-exporter's chart is not given the registry (no catalog setting): only the rewrite moved it.
        assert ("cronjob gpu-operator/gpu-process-exporter", f"{REGISTRY}/astrago/gpu-process-exporter:1.0.0") in images, images

        history = json.loads(stack.helm("history", "astrago", "-n", "astrago", "-o", "json"))
        assert "; patches sha256:" in history[-1]["description"] and f"images from {REGISTRY}" in history[-1]["description"], history[-1]

        # The wrapper's path is relative to the project, so a second preview is clean.
        again = stack.stack.preview(expect_no_changes=True)
        assert set((again.change_summary or {}).keys()) <= {"same"}, again.change_summary

        # Editing a patch is an update of that release only.
        edit = copy.deepcopy(CORE_PATCH)
        edit["spec"]["template"]["metadata"]["annotations"]["astrago.io/patch-note"] = "second"
        (project / PATCH_DIR / "10-core-label.yaml").write_text(yaml.safe_dump(edit, sort_keys=False))
        edited = stack.stack.preview(diff=True)
        assert (edited.change_summary or {}).get(auto.OpType.UPDATE) == 1, edited.change_summary
        assert "patches sha256:" in edited.stdout

        # A patch that matches nothing the chart renders fails the upgrade with its file; the release stays.
        (project / PATCH_DIR / "20-proxy-nodeport.yaml").write_text(yaml.safe_dump({**PROXY_PATCH, "target": {"kind": "Service", "name": "astrago-proxi"}}))
        with pytest.raises(auto.CommandError) as failed:
            stack.stack.up(on_output=print, message="e2e: a patch that matches nothing")
        assert "charts/patches/astrago/20-proxy-nodeport.yaml: target {kind: 'Service', name: 'astrago-proxi'} matches no object" in str(failed.value)
        status = json.loads(stack.helm("status", "astrago", "-n", "astrago", "-o", "json"))
        assert status["info"]["status"] == "deployed" and status["version"] == 1, status["info"]
    finally:
        dispose(stack)


def test_a_broken_patch_fails_at_preview_and_nothing_is_deployed(project: Path, engine_env: dict[str, str]) -> None:
    _patched_project(project, {"10-core-label.yaml": CORE_PATCH, "30-broken.yaml": "target: {kind: Service\npatch: [\n"})
    stack = new_stack(project, engine_env, "local", {"offline": {"registry": REGISTRY}}, prefix="e2e-badpatch")
    try:
        with pytest.raises(auto.CommandError) as previewed:
            stack.stack.preview()
        message = str(previewed.value)
        assert "nothing was changed" in message and "charts/patches/astrago/30-broken.yaml: not valid YAML" in message, message

        with pytest.raises(auto.CommandError) as applied:
            stack.stack.up(on_output=print, message="e2e: a broken patch")
        assert "charts/patches/astrago/30-broken.yaml" in str(applied.value)
        resources = (stack.stack.export_stack().deployment or {}).get("resources") or []
        assert [r["type"] for r in resources if r["type"] != "pulumi:pulumi:Stack"] == [], "the engine recorded resources"
        assert json.loads(stack.helm("list", "-n", "astrago", "-o", "json")) == [], "a Helm release was installed"
    finally:
        dispose(stack)
