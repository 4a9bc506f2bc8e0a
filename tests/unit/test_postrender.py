"""Post-render patches, the image rewrite, the wrapper and the preview-time patch check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.values import resolve_stack
from model.errors import InputError
from model.identity import RELEASE_TYPE as RELEASE
from model.patches import (
    PATCHES_DIR,
    Target,
    apply_json6902,
    apply_patches,
    check_patch_folders,
    load_patches,
    patch_files,
    release_patches,
    strategic_merge,
)
from model.postrender import check_registry, plan_postrender, render, rewrite_image, rewrite_images, write_wrapper
from tests.conftest import RunProgram

ROOT = Path(__file__).resolve().parents[2]


def _deployment(name: str = "astrago-core", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": "core"}},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "core"}}, "spec": {
            "containers": [{"name": "core", "image": "docker.io/astrago/core:1", "env": [{"name": "A", "value": "1"}],
                            "volumeMounts": [{"name": "logs", "mountPath": "/logs"}], "args": ["--a"]}],
            **spec,
        }}},
    }


def _service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "astrago-proxy"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}}


def _write(folder: Path, name: str, content: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump_all(content if isinstance(content, list) else [content]))
    return path


def _patches(tmp_path: Path, files: dict[str, Any]) -> tuple[Any, ...]:
    folder = tmp_path / PATCHES_DIR / "astrago"
    for name, content in files.items():
        _write(folder, name, content)
    return load_patches(tmp_path, patch_files(folder))


# --- JSON 6902 ------------------------------------------------------------------

def test_json6902_operations_follow_rfc6902() -> None:
    doc = _deployment()
    out = apply_json6902(doc, [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels/tier", "value": "app"},
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--b"},
        {"op": "add", "path": "/spec/template/spec/containers/0/args/0", "value": "--first"},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copied"},
        {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/spec/template/spec/containers/0/env/0"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "x"}},
        {"op": "replace", "path": "/metadata/annotations/a~0b~1c", "value": "y"},
    ], "p.yaml")
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["labels"] == {"app": "core", "copied": "core", "moved": "app"}
    assert out["spec"]["template"]["spec"]["containers"][0]["args"] == ["--first", "--a", "--b"]
    assert out["spec"]["template"]["spec"]["containers"][0]["env"] == []
    assert out["metadata"]["annotations"] == {"a~b/c": "y"}
    assert doc["spec"]["replicas"] == 1, "the input object is not modified"


@pytest.mark.parametrize(("op", "message"), [
    ({"op": "replace", "path": "/spec/replicaz", "value": 2}, "path /spec/replicaz does not exist (no key 'replicaz'"),
    ({"op": "remove", "path": "/spec/template/spec/containers/3"}, "index 3, the list has 1 item(s)"),
    ({"op": "add", "path": "/spec/nothing/here", "value": 1}, "path /spec/nothing does not exist"),
    ({"op": "replace", "path": "/spec/replicas/x", "value": 1}, "it goes into a int"),
    ({"op": "test", "path": "/spec/replicas", "value": True}, "test failed: the value is 1, the patch expects True"),
    ({"op": "move", "from": "/spec/gone", "path": "/spec/x"}, "path /spec/gone does not exist"),
])
def test_an_operation_that_cannot_apply_names_file_operation_and_reason(op: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        apply_json6902(_deployment(), [op], "charts/patches/astrago/20-x.yaml")
    text = str(caught.value)
    assert text.startswith(f"charts/patches/astrago/20-x.yaml: patch[0] `{op['op']} {op['path']}` on Deployment/astrago-core: "), text
    assert message in text, text


def test_targets_select_like_kustomize() -> None:
    svc, deploy = _service(), _deployment()
    assert Target(version="v1", kind="Service", name="astrago-proxy").matches(svc, "astrago")
    assert Target(group="", kind="Service").matches(svc, "astrago"), "the core group is ''"
    assert Target(group="apps", kind="Deploy.*", name="astrago-.*").matches(deploy, "astrago"), "kind and name are regular expressions"
    assert not Target(name="astrago").matches(deploy, "astrago"), "a name matches whole, not as a prefix"
    assert Target(namespace="astrago").matches(deploy, "astrago"), "an object without a namespace is in the release's"
    assert not Target(namespace="other").matches(deploy, "astrago")
    assert not Target(group="apps", kind="Service").matches(svc, "astrago")


def test_a_target_that_matches_nothing_names_the_file_and_what_was_rendered(tmp_path: Path) -> None:
    patches = _patches(tmp_path, {"20-svc.yaml": {"target": {"kind": "Service", "name": "astrago-proxi"}, "patch": [{"op": "remove", "path": "/spec/type"}]}})
    with pytest.raises(InputError) as caught:
        apply_patches([_service(), _deployment()], patches, "astrago")
    text = str(caught.value)
    assert "charts/patches/astrago/20-svc.yaml: target {kind: 'Service', name: 'astrago-proxi'} matches no object" in text
    assert "rendered: Service/astrago-proxy, Deployment/astrago-core" in text


# --- strategic merge ---------------------------------------------------------------

def test_strategic_merge_merges_maps_and_named_lists() -> None:
    patch = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core", "labels": {"patched": "yes"}},
        "spec": {"template": {"spec": {
            "containers": [{"name": "core", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "one"}],
                            "volumeMounts": [{"mountPath": "/logs", "readOnly": True}], "args": ["--z"]},
                           {"name": "sidecar", "image": "busybox:1"}],
            "volumes": [{"name": "logs", "emptyDir": {}}],
        }}},
    }
    out = strategic_merge(_deployment(), patch)
    assert out["metadata"]["labels"] == {"app": "core", "patched": "yes"}
    core, sidecar = out["spec"]["template"]["spec"]["containers"]
    assert core["image"] == "docker.io/astrago/core:1", "a container merges by name, keeping what the patch does not say"
    assert core["env"] == [{"name": "A", "value": "one"}, {"name": "B", "value": "2"}]
    assert core["volumeMounts"] == [{"name": "logs", "mountPath": "/logs", "readOnly": True}], "volumeMounts merge on mountPath"
    assert core["args"] == ["--z"], "a list of scalars is replaced"
    assert sidecar == {"name": "sidecar", "image": "busybox:1"}
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "logs", "emptyDir": {}}]


def test_strategic_merge_directives_delete_and_replace() -> None:
    patch = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core", "labels": {"$patch": "replace", "only": "this"}},
        "spec": {"replicas": None, "template": {"spec": {"containers": [{"name": "core", "$patch": "delete"}]}}},
    }
    out = strategic_merge(_deployment(), patch)
    assert out["metadata"]["labels"] == {"only": "this"}
    assert "replicas" not in out["spec"], "null deletes a key"
    assert out["spec"]["template"]["spec"]["containers"] == []


def test_service_ports_merge_on_port() -> None:
    out = strategic_merge(_service(), {"spec": {"ports": [{"port": 80, "nodePort": 30181}, {"port": 443, "targetPort": 8443}]}})
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "nodePort": 30181}, {"port": 443, "targetPort": 8443}]


def test_a_merge_patch_for_an_object_not_rendered_names_the_file(tmp_path: Path) -> None:
    patches = _patches(tmp_path, {"10-core.yaml": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-kore"}}})
    with pytest.raises(InputError, match=r"charts/patches/astrago/10-core.yaml: Deployment/astrago-kore \(apps/v1\) matches no object"):
        apply_patches([_deployment()], patches, "astrago")


def test_patches_apply_in_file_order_and_documents_in_order(tmp_path: Path) -> None:
    patches = _patches(tmp_path, {
        "20-second.yaml": {"target": {"kind": "Deployment"}, "patch": [{"op": "replace", "path": "/spec/replicas", "value": 3}]},
        "10-first.yaml": [
            {"target": {"kind": "Deployment"}, "patch": [{"op": "replace", "path": "/spec/replicas", "value": 2}]},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core", "annotations": {"r": "seen"}}},
        ],
    })
    assert [p.source for p in patches] == [
        "charts/patches/astrago/10-first.yaml (document 1)", "charts/patches/astrago/10-first.yaml (document 2)", "charts/patches/astrago/20-second.yaml",
    ]
    (out,) = apply_patches([_deployment()], patches, "astrago")
    assert out["spec"]["replicas"] == 3 and out["metadata"]["annotations"] == {"r": "seen"}


# --- checking patch files (what prepare runs at preview) -----------------------------------

@pytest.mark.parametrize(("content", "message"), [
    ("target: {kind: Service\npatch: [", "10-bad.yaml: not valid YAML"),
    ({"target": {"kind": "Service"}, "patch": [{"op": "repalce", "path": "/a", "value": 1}]}, "patch[0]: `op` is 'repalce'; allowed:"),
    ({"target": {"kind": "Service"}, "patch": [{"op": "replace", "path": "spec/type", "value": 1}]}, "must start with '/'"),
    ({"target": {"kind": "Service"}, "patch": [{"op": "replace", "path": "/a"}]}, "`replace` takes ['path', 'value']; missing ['value']"),
    ({"target": {"kind": "Service"}, "patch": [{"op": "remove", "path": "/a~2"}]}, "'~' not followed by 0 or 1"),
    ({"target": {"kind": "Service", "labelSelector": "a=b"}, "patch": [{"op": "remove", "path": "/a"}]}, "unknown target key(s) ['labelSelector']"),
    ({"target": {"kind": "Service"}, "patch": []}, "`patch` must be a non-empty list"),
    ({"target": {"name": "("}, "patch": [{"op": "remove", "path": "/a"}]}, "target.name '(' is not a valid regular expression"),
    ({"apiVersion": "v1", "kind": "Service"}, "needs apiVersion, kind and metadata.name"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"$retainKeys": ["a"]}}, "directive '$retainKeys' at /spec is not supported"),
    ({"spec": {"replicas": 2}}, "not a patch; write either a JSON 6902 patch"),
    ("", "holds no patch"),
])
def test_bad_patch_files_are_refused_naming_the_file(tmp_path: Path, content: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        _patches(tmp_path, {"10-bad.yaml": content})
    assert "charts/patches/astrago/10-bad.yaml" in str(caught.value) and message in str(caught.value), str(caught.value)


def test_every_bad_file_is_reported_together(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        _patches(tmp_path, {"a.yaml": "[", "b.yml": {"x": 1}, "c.json": "{}"})
    assert len(caught.value.problems) == 3
    assert "c.json: a patch file must end in .yaml or .yml" in str(caught.value)


def test_the_catalog_flag_and_the_folder_must_agree(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="sets `patches: true` but charts/patches/astrago/ holds no patch file"):
        release_patches(tmp_path, "astrago", declared=True)
    _write(tmp_path / PATCHES_DIR / "astrago", "10.yaml", {"target": {"kind": "Service"}, "patch": [{"op": "remove", "path": "/a"}]})
    with pytest.raises(InputError, match="charts/patches/astrago/ holds patches but release 'astrago' does not set `patches: true`"):
        release_patches(tmp_path, "astrago", declared=False)
    assert release_patches(tmp_path, "keycloak", declared=False) is None
    assert check_patch_folders(tmp_path, ["astrago"]) == []
    (tmp_path / PATCHES_DIR / "astrgo").mkdir()
    assert check_patch_folders(tmp_path, ["astrago"]) == [
        "charts/patches/astrgo/ names no release of catalog/releases.yaml; rename it to the release it patches (known: ['astrago'])"
    ]


def test_editing_a_patch_changes_the_digest(tmp_path: Path) -> None:
    folder = tmp_path / PATCHES_DIR / "astrago"
    _write(folder, "10.yaml", {"target": {"kind": "Service"}, "patch": [{"op": "replace", "path": "/a", "value": 1}]})
    first = release_patches(tmp_path, "astrago", declared=True)
    _write(folder, "10.yaml", {"target": {"kind": "Service"}, "patch": [{"op": "replace", "path": "/a", "value": 2}]})
    second = release_patches(tmp_path, "astrago", declared=True)
    assert first and second and first.digest != second.digest
    assert second.files == ("charts/patches/astrago/10.yaml",)


def _project(tmp_path: Path, patch: Any, flag: bool = True, registry: str | None = None) -> Path:
    """A copy of what prepare reads, with the astrago release patched."""
    root = tmp_path / "project"
    for part in ("catalog", "values", "charts/own"):
        shutil.copytree(ROOT / part, root / part)
    shutil.copy2(ROOT / "Pulumi.local.yaml", root / "Pulumi.local.yaml")
    catalog = yaml.safe_load((root / "catalog/releases.yaml").read_text())
    for release in catalog["releases"]:
        if release["name"] == "astrago":
            release["patches"] = flag
    (root / "catalog/releases.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    if registry:
        stack = yaml.safe_load((root / "Pulumi.local.yaml").read_text())
        stack["config"]["astrago-deploy:offline"] = {"registry": registry}
        (root / "Pulumi.local.yaml").write_text(yaml.safe_dump(stack))
    if patch is not None:
        _write(root / PATCHES_DIR / "astrago", "10-core.yaml", patch)
    return root


def test_prepare_fails_on_a_broken_patch_naming_the_file(tmp_path: Path) -> None:
    root = _project(tmp_path, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: astrago-core\n")
    with pytest.raises(InputError) as caught:
        resolve_stack("local", root)
    assert "charts/patches/astrago/10-core.yaml: not valid YAML" in str(caught.value)


def test_prepare_fails_when_patches_are_not_declared(tmp_path: Path) -> None:
    root = _project(tmp_path, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core"}}, flag=False)
    with pytest.raises(InputError, match="does not set `patches: true`"):
        resolve_stack("local", root)


def test_prepare_refuses_a_registry_with_a_scheme(tmp_path: Path) -> None:
    root = _project(tmp_path, None, flag=False, registry="https://harbor.site")
    with pytest.raises(InputError, match=r"Pulumi.local.yaml: astrago-deploy:offline.registry: 'https://harbor.site' is not a registry"):
        resolve_stack("local", root)


def test_prepare_plans_the_postrender_of_patched_releases_and_of_all_with_a_registry(tmp_path: Path) -> None:
    root = _project(tmp_path, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core"}})
    releases = resolve_stack("local", root).releases
    spec = releases["astrago"].postrender
    assert spec is not None and spec.wrapper == ".state/postrender/local/astrago" and spec.registry is None
    assert spec.patches and spec.description() == f"patches sha256:{spec.patches.digest}"
    assert all(r.postrender is None for n, r in releases.items() if n != "astrago")
    with_registry = resolve_stack("local", _project(tmp_path / "b", None, flag=False, registry="reg.site:5000/")).releases
    assert {n: r.postrender and r.postrender.description() for n, r in with_registry.items()} == {n: "images from reg.site:5000" for n in with_registry}


# --- images --------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "expected"), [
    ("nginx:1.27", "reg.site:5000/library/nginx:1.27"),
    ("nginx", "reg.site:5000/library/nginx"),
    ("docker.io/nginx:1.27", "reg.site:5000/library/nginx:1.27"),
    ("docker.io/library/mariadb:11.4", "reg.site:5000/library/mariadb:11.4"),
    ("astrago/core:core-dev-1", "reg.site:5000/astrago/core:core-dev-1"),
    ("registry.k8s.io/kube-scheduler:v1.36.3", "reg.site:5000/kube-scheduler:v1.36.3"),
    ("quay.io/prometheus/node-exporter@sha256:" + "a" * 64, "reg.site:5000/prometheus/node-exporter@sha256:" + "a" * 64),
    ("ghcr.io/a/b/c:1@sha256:" + "b" * 64, "reg.site:5000/a/b/c:1@sha256:" + "b" * 64),
    ("localhost:5000/tool:2", "reg.site:5000/tool:2"),
    ("localhost/tool", "reg.site:5000/tool"),
    ("reg.site:5000/astrago/core:1", "reg.site:5000/astrago/core:1"),
])
def test_rewrite_image_replaces_the_registry_and_keeps_path_tag_digest(image: str, expected: str) -> None:
    assert rewrite_image(image, "reg.site:5000") == expected


def test_a_registry_with_a_path_prefixes_the_repository() -> None:
    assert rewrite_image("nginx:1.27", "harbor.site/mirror") == "harbor.site/mirror/library/nginx:1.27"
    assert rewrite_image("harbor.site/mirror/library/nginx:1.27", "harbor.site/mirror") == "harbor.site/mirror/library/nginx:1.27"


@pytest.mark.parametrize("value", ["https://reg.site", "reg.site:5000/Astrago", "reg site", "reg.site:tag:1", ""])
def test_bad_registries_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="is not a registry"):
        check_registry(value, "Pulumi.x.yaml: astrago-deploy:offline.registry")


def test_every_container_list_of_every_kind_is_rewritten() -> None:
    deployment = _deployment(initContainers=[{"name": "init", "image": "busybox:1.36"}], ephemeralContainers=[{"name": "debug", "image": "alpine"}])
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "docker.io/astrago/gpu-process-exporter:1.0.0"}]}}}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "quay.io/x/y:1"}]}}
    custom = {"apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob", "metadata": {"name": "m"}, "spec": {"mpiReplicaSpecs": {"Launcher": {"template": {"spec": {
        "containers": [{"name": "l", "image": "mpioperator/mpi-pi"}]}}}}}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x"},
           "spec": {"default": {"containers": [{"name": "a", "image": "nginx"}]}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "nginx:1"}}
    out = [rewrite_images(d, "reg.e2e") for d in (deployment, cronjob, pod, custom, crd, config)]
    spec = out[0]["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["containers"] + spec["initContainers"] + spec["ephemeralContainers"]] == [
        "reg.e2e/astrago/core:1", "reg.e2e/library/busybox:1.36", "reg.e2e/library/alpine"]
    assert out[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.e2e/astrago/gpu-process-exporter:1.0.0"
    assert out[2]["spec"]["containers"][0]["image"] == "reg.e2e/x/y:1"
    assert out[3]["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["image"] == "reg.e2e/mpioperator/mpi-pi"
    assert out[4] == crd and out[5] == config
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/astrago/core:1", "the input is not modified"


# --- the stream and the wrapper ------------------------------------------------------------

STREAM = """---
# Source: astrago/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: astrago-config
data:
  flag: "on"   # a comment Helm keeps
---
# Source: astrago/templates/proxy.yaml
apiVersion: v1
kind: Service
metadata:
  name: astrago-proxy
spec:
  type: NodePort
  ports:
    - port: 80
      targetPort: 8080
      nodePort: 30080
---
# Source: astrago/templates/core.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: astrago-core
spec:
  template:
    spec:
      containers:
        - name: core
          image: docker.io/astrago/core:1
"""


def test_render_keeps_untouched_documents_byte_for_byte(tmp_path: Path) -> None:
    patches = _patches(tmp_path, {"20.yaml": {"target": {"kind": "Service", "name": "astrago-proxy"},
                                              "patch": [{"op": "replace", "path": "/spec/ports/0/nodePort", "value": 30181}]}})
    out = render(STREAM, patches, "astrago", "reg.e2e")
    chunks = out.split("---\n")
    assert chunks[1] == STREAM.split("---\n")[1], "the ConfigMap is unchanged: written back as it came, comments included"
    assert chunks[2].startswith("# Source: astrago/templates/proxy.yaml\n"), "a changed object keeps Helm's Source line"
    docs = list(yaml.safe_load_all(out))
    assert docs[1]["spec"]["ports"][0]["nodePort"] == 30181
    assert docs[2]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.e2e/astrago/core:1"
    assert docs[0]["data"]["flag"] == "on"
    assert render(STREAM, (), "astrago", None) == STREAM


def test_the_wrapper_runs_the_postrender_from_the_project_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "model").symlink_to(ROOT / "model")
    _write(root / PATCHES_DIR / "astrago", "10.yaml", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core", "labels": {"p": "1"}}})
    patches = release_patches(root, "astrago", declared=True)
    spec = plan_postrender(root, "unit", "astrago", "astrago", patches, "reg.e2e")
    assert spec is not None
    path = write_wrapper(spec)
    assert path == root / ".state/postrender/unit/astrago" and path.stat().st_mode & 0o111
    # Run from elsewhere, as the provider would if its directory were not the project's.
    done = subprocess.run([str(path)], input=STREAM, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    core = list(yaml.safe_load_all(done.stdout))[2]
    assert core["metadata"]["labels"] == {"p": "1"} and core["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.e2e/astrago/core:1"
    # A patch that no longer matches fails the render with its file on stderr (Helm shows it).
    _write(root / PATCHES_DIR / "astrago", "10.yaml", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-gone"}})
    failed = subprocess.run([str(path)], input=STREAM, capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "charts/patches/astrago/10.yaml: Deployment/astrago-gone (apps/v1) matches no object" in failed.stderr, failed.stderr


def test_the_program_passes_the_wrapper_and_names_the_registry_in_the_description(run_program: RunProgram) -> None:
    wrappers = ROOT / ".state" / "postrender" / "unit-postrender"
    shutil.rmtree(wrappers, ignore_errors=True)
    try:
        run = run_program("unit-postrender", overrides={"inherits": "local", "offline": {"registry": "reg.site:5000"}})
        releases = {r.inputs["name"]: r.inputs for r in run.of_type(RELEASE)}
        assert releases, "the local stack deploys releases"
        for name, inputs in releases.items():
            assert inputs["postrender"] == f".state/postrender/unit-postrender/{name}", "a relative path: the same on every machine"
            assert inputs["description"].endswith("; images from reg.site:5000"), inputs["description"]
            assert (wrappers / name).stat().st_mode & 0o111, f"the wrapper of {name} is written and executable"
    finally:
        shutil.rmtree(wrappers, ignore_errors=True)
    plain = {r.inputs["name"]: r.inputs for r in run_program("local").of_type(RELEASE)}
    assert all("postrender" not in inputs and "; " not in inputs["description"] for inputs in plain.values()), "no patches, no registry: no post-render"
