"""The post-render (postrender/): kustomize patches applied by the pinned kubectl, the registry move and digest pin, the wrapper.

The patch tests run the real `kubectl kustomize` (.tools/bin/kubectl, built by
`make setup`; missing, they fail with that hint) on objects shaped like what
charts render: a Deployment with two containers, a custom resource whose list
Kubernetes replaces, ports merged on containerPort, volumes and env on name.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.process import tool
from model.deployment import resolve_stack
from model.errors import InputError
from model.identity import RELEASE_TYPE as RELEASE
from model.images_lock import ImagesLock, LockedImage, lock_path, write_images_lock
from postrender.kustomize import PATCHES_DIR, PatchSet, apply_patches, check_patch_folders, release_patches
from postrender.plan import check_registry, plan_postrender, refusal, refused_problems, write_wrapper
from postrender.stream import post_render
from tests.conftest import RunProgram

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "c" * 64

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "astrago-core", "labels": {"app.kubernetes.io/part-of": "astrago"}},
    "spec": {"template": {"metadata": {"annotations": {"checksum/config": "abc"}}, "spec": {
        "containers": [
            {"name": "core", "image": "docker.io/astrago/core:1",
             "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
             "env": [{"name": "TZ", "value": "UTC"}, {"name": "LOG", "value": "info"}]},
            {"name": "sidecar", "image": "docker.io/astrago/sidecar:1", "env": [{"name": "TZ", "value": "UTC"}]},
        ],
        "volumes": [{"name": "config", "configMap": {"name": "astrago-config"}}, {"name": "data", "emptyDir": {}}],
    }}},
}
SERVICE: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "astrago-proxy", "labels": {"app.kubernetes.io/part-of": "astrago"}},
                           "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}}
CONFIG: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "astrago-config"}, "data": {"flag": "on"}}
# A custom resource: kustomize knows no merge key for its lists, so a patch replaces them, as the API server's merge would.
REALM: dict[str, Any] = {"apiVersion": "keycloak.org/v1alpha1", "kind": "KeycloakRealmImport", "metadata": {"name": "astrago"},
                         "spec": {"realm": {"clients": [{"name": "astrago", "enabled": True}, {"name": "grafana", "enabled": True}]}}}


def manifest(*objects: dict[str, Any]) -> str:
    return "".join(f"---\n# Source: astrago/templates/{o['kind'].lower()}.yaml\n{yaml.safe_dump(o, sort_keys=False)}" for o in objects)


def write_patches(root: Path, patches: list[dict[str, Any]], files: dict[str, Any] | None = None, release: str = "astrago") -> PatchSet:
    folder = root / PATCHES_DIR / release
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        (folder / name).write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "patches": patches}))
    patchset = release_patches(root, release, declared=True)
    assert patchset is not None
    return patchset


def by_name(text: str) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(text) if d}


@pytest.fixture(scope="module")
def kubectl() -> str:
    return tool("kubectl")  # ToolError "run `make setup`" when the pinned kubectl is missing: never skipped


# --- kustomize applies the patches ----------------------------------------------------------------

def test_a_deployment_with_two_containers_merges_on_names_and_container_ports(tmp_path: Path, kubectl: str) -> None:
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core"}, "spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "env": [{"name": "TZ", "value": "Asia/Seoul"}]},
                       {"name": "core", "ports": [{"containerPort": 9090, "name": "prom"}, {"containerPort": 7000, "name": "debug"}]}],
        "volumes": [{"name": "data", "emptyDir": None, "persistentVolumeClaim": {"claimName": "astrago-data"}}],
    }}}}
    out = by_name(apply_patches(manifest(DEPLOYMENT, SERVICE), write_patches(tmp_path, [{"path": "core.yaml"}], {"core.yaml": patch}), tmp_path))
    spec = out["Deployment/astrago-core"]["spec"]["template"]["spec"]
    # Strategic merge puts the items the patch names first, in its order (as the API server does); both stay, each whole.
    assert [c["name"] for c in spec["containers"]] == ["sidecar", "core"]
    containers = {c["name"]: c for c in spec["containers"]}
    core, sidecar = containers["core"], containers["sidecar"]
    assert core["image"] == "docker.io/astrago/core:1"
    assert sorted((p["containerPort"], p["name"]) for p in core["ports"]) == [(7000, "debug"), (8080, "http"), (9090, "prom")], "ports merge on containerPort"
    assert core["env"] == DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["env"], "the other container's env is untouched"
    assert sidecar["env"] == [{"name": "TZ", "value": "Asia/Seoul"}] and sidecar["image"] == "docker.io/astrago/sidecar:1"
    assert {v["name"]: v for v in spec["volumes"]}["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "astrago-data"}}, "volumes merge on name"
    assert out["Deployment/astrago-core"]["spec"]["template"]["metadata"]["annotations"] == {"checksum/config": "abc"}
    assert out["Service/astrago-proxy"] == SERVICE


def test_a_custom_resource_list_is_replaced_not_merged_by_name(tmp_path: Path, kubectl: str) -> None:
    patch = {"apiVersion": "keycloak.org/v1alpha1", "kind": "KeycloakRealmImport", "metadata": {"name": "astrago"},
             "spec": {"realm": {"clients": [{"name": "grafana", "enabled": False}]}}}
    out = by_name(apply_patches(manifest(REALM, CONFIG), write_patches(tmp_path, [{"patch": yaml.safe_dump(patch)}]), tmp_path))
    assert out["KeycloakRealmImport/astrago"]["spec"]["realm"]["clients"] == [{"name": "grafana", "enabled": False}]


def test_a_label_selector_target_and_a_json6902_patch(tmp_path: Path, kubectl: str) -> None:
    patches = [
        {"target": {"labelSelector": "app.kubernetes.io/part-of=astrago"},
         "patch": yaml.safe_dump([{"op": "add", "path": "/metadata/labels/site", "value": "hq"}])},
        {"target": {"version": "v1", "kind": "Service", "name": "astrago-proxy"},
         "patch": yaml.safe_dump([{"op": "test", "path": "/spec/ports/0/port", "value": 80}, {"op": "replace", "path": "/spec/ports/0/nodePort", "value": 30181}])},
    ]
    out = by_name(apply_patches(manifest(DEPLOYMENT, SERVICE, CONFIG), write_patches(tmp_path, patches), tmp_path))
    assert out["Deployment/astrago-core"]["metadata"]["labels"]["site"] == "hq" and out["Service/astrago-proxy"]["metadata"]["labels"]["site"] == "hq"
    assert out["ConfigMap/astrago-config"] == CONFIG, "the selector does not pick the unlabelled ConfigMap"
    assert out["Service/astrago-proxy"]["spec"]["ports"][0]["nodePort"] == 30181
    assert not any(k.startswith("astrago.io/patch-probe") for d in out.values() for k in (d["metadata"].get("annotations") or {})), "no probe left behind"


def test_a_target_that_matches_nothing_fails_naming_the_patch_and_target(tmp_path: Path, kubectl: str) -> None:
    patches = [{"path": "svc.yaml", "target": {"kind": "Service", "name": "astrago-proxi"}},
               {"target": {"labelSelector": "app=none"}, "patch": yaml.safe_dump([{"op": "remove", "path": "/spec"}])}]
    patchset = write_patches(tmp_path, patches, {"svc.yaml": [{"op": "remove", "path": "/spec/type"}]})
    with pytest.raises(InputError) as refused:
        apply_patches(manifest(DEPLOYMENT, SERVICE), patchset, tmp_path)
    assert refused.value.problems == (
        "charts/patches/astrago/kustomization.yaml patches[0] (path: svc.yaml, target {kind: Service, name: astrago-proxi}): "
        "the target matches no object the chart rendered; rendered: Deployment/astrago-core, Service/astrago-proxy",
        "charts/patches/astrago/kustomization.yaml patches[1] (inline patch, target {labelSelector: app=none}): "
        "the target matches no object the chart rendered; rendered: Deployment/astrago-core, Service/astrago-proxy",
    )


def test_a_strategic_merge_patch_for_an_object_not_rendered_is_refused_by_kustomize(tmp_path: Path, kubectl: str) -> None:
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-kore"}, "spec": {"replicas": 2}}
    with pytest.raises(InputError, match=r"charts/patches/astrago/kustomization.yaml: kustomize refused the patches: .*astrago-kore"):
        apply_patches(manifest(DEPLOYMENT), write_patches(tmp_path, [{"patch": yaml.safe_dump(patch)}]), tmp_path)


# --- the folder is checked before anything renders ------------------------------------------------

@pytest.mark.parametrize(("kustomization", "message"), [
    ({"resources": ["x.yaml"], "patches": [{"path": "a.yaml"}]}, "['resources'] not allowed: the rendered chart is the only resource"),
    ({"patchesStrategicMerge": ["a.yaml"]}, "patchesStrategicMerge and patchesJson6902 are written as `patches`"),
    ({"patches": []}, "`patches` must be a non-empty list"),
    ({"patches": [{"path": "a.yaml", "patch": "x"}]}, "give exactly one of `path`"),
    ({"patches": [{"path": "a.yaml", "target": {"kind": "Service", "labels": "x"}}]}, "target.labels: unknown"),
    ({"patches": [{"path": "../../../etc/passwd"}]}, "is not a file of charts/patches/astrago/"),
    ({"patches": [{"path": "b.yaml"}]}, "charts/patches/astrago/a.yaml is not listed"),
])
def test_a_bad_kustomization_is_refused_naming_the_file(tmp_path: Path, kustomization: dict[str, Any], message: str) -> None:
    folder = tmp_path / PATCHES_DIR / "astrago"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text("kind: x\n")
    (folder / "b.yaml").write_text("kind: x\n")
    if "b.yaml" not in str(kustomization):
        (folder / "b.yaml").unlink()
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(InputError) as refused:
        release_patches(tmp_path, "astrago", declared=True)
    assert message in str(refused.value), str(refused.value)


def test_the_catalog_flag_and_the_folder_must_agree(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"sets `patches: true` but charts/patches/astrago/kustomization.yaml does not exist"):
        release_patches(tmp_path, "astrago", declared=True)
    write_patches(tmp_path, [{"path": "a.yaml"}], {"a.yaml": {"kind": "x"}})
    with pytest.raises(InputError, match=r"charts/patches/astrago/ holds patches but release 'astrago' does not set `patches: true`"):
        release_patches(tmp_path, "astrago", declared=False)
    assert release_patches(tmp_path, "keycloak", declared=False) is None
    (tmp_path / PATCHES_DIR / "astrgo").mkdir()
    assert check_patch_folders(tmp_path, ["astrago"]) == [
        "charts/patches/astrgo/ names no release of catalog/releases.yaml; rename it to the release it patches (known: ['astrago'])"]


def test_editing_a_patch_changes_the_digest(tmp_path: Path) -> None:
    first = write_patches(tmp_path, [{"path": "a.yaml"}], {"a.yaml": {"kind": "x", "metadata": {"name": "a"}}})
    second = write_patches(tmp_path, [{"path": "a.yaml"}], {"a.yaml": {"kind": "x", "metadata": {"name": "b"}}})
    assert first.digest != second.digest and len(first.digest) == 64


# --- the whole post-render: patches, then the registry move and digest pin ---------------------------

def site_lock(root: Path, registry: str = "reg.site:5000") -> None:
    write_images_lock(ImagesLock("unit", registry, (
        LockedImage("docker.io/astrago/core:1", ("astrago",), digest=DIGEST, size=1),
        LockedImage("docker.io/astrago/sidecar:1", ("astrago",), digest=DIGEST, size=1),
    )), lock_path(root, "unit"))


def test_post_render_patches_then_pins_and_keeps_untouched_documents(tmp_path: Path, kubectl: str) -> None:
    site_lock(tmp_path)
    patchset = write_patches(tmp_path, [{"target": {"kind": "Service"}, "patch": yaml.safe_dump([{"op": "replace", "path": "/spec/ports/0/nodePort", "value": 30181}])}])
    out = post_render(manifest(CONFIG, SERVICE, DEPLOYMENT), tmp_path, patchset, "reg.site:5000", "images/unit.lock.yaml")
    objects = by_name(out)
    images = [c["image"] for c in objects["Deployment/astrago-core"]["spec"]["template"]["spec"]["containers"]]
    assert images == [f"reg.site:5000/astrago/core:1@{DIGEST}", f"reg.site:5000/astrago/sidecar:1@{DIGEST}"]
    assert objects["Service/astrago-proxy"]["spec"]["ports"][0]["nodePort"] == 30181
    plain = manifest(CONFIG)
    assert post_render(plain, tmp_path, None, None, None) == plain, "nothing to do: the stream as it came"


def test_post_render_refuses_an_image_the_lock_lacks_and_a_lock_of_another_registry(tmp_path: Path) -> None:
    site_lock(tmp_path)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "x", "image": "quay.io/other/x:2"}]}}
    with pytest.raises(InputError, match=r"Pod p spec.containers\[0\].image: image quay.io/other/x:2 is not in images/unit.lock.yaml"):
        post_render(manifest(pod), tmp_path, None, "reg.site:5000", "images/unit.lock.yaml")
    with pytest.raises(InputError, match=r"was made for registry 'reg.site:5000', the stack sets 'reg.other:5000'"):
        post_render(manifest(pod), tmp_path, None, "reg.other:5000", "images/unit.lock.yaml")
    with pytest.raises(InputError, match=r"images/none.lock.yaml does not exist: run `make images STACK=none`"):
        post_render(manifest(pod), tmp_path, None, "reg.site:5000", "images/none.lock.yaml")


@pytest.mark.parametrize("value", ["https://reg.site", "reg.site/Upper", "reg site", "reg.site:port"])
def test_bad_registries_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="is not a registry"):
        check_registry(value, "Pulumi.x.yaml: astrago-deploy:offline.registry")


def test_the_wrapper_runs_the_postrender_from_the_project_root(tmp_path: Path, kubectl: str) -> None:
    root = tmp_path / "project"
    root.mkdir()
    for part in ("model", "postrender", "cli", "catalog"):
        (root / part).symlink_to(ROOT / part)
    (root / ".tools").symlink_to(ROOT / ".tools")
    site_lock(root)
    patchset = write_patches(root, [{"patch": yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "astrago-core", "labels": {"p": "1"}}})}])
    spec = plan_postrender(root, "unit", "astrago", "astrago", patchset, "reg.site:5000")
    assert spec is not None and spec.pins and spec.description() == f"patches sha256:{patchset.digest}; images from reg.site:5000 pinned sha256:{spec.pins}"
    path = write_wrapper(spec)
    assert path == root / ".state/postrender/unit/astrago" and path.stat().st_mode & 0o111
    done = subprocess.run([str(path)], input=manifest(CONFIG, DEPLOYMENT), capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    core = by_name(done.stdout)["Deployment/astrago-core"]
    assert core["metadata"]["labels"]["p"] == "1" and core["spec"]["template"]["spec"]["containers"][0]["image"] == f"reg.site:5000/astrago/core:1@{DIGEST}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "astrago-core"}, "spec": {"containers": [{"name": "x", "image": "quay.io/other/x:2"}]}}
    failed = subprocess.run([str(path)], input=manifest(pod), capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "astrago-deploy post-render of release 'astrago' failed:" in failed.stderr and "astrago-core" in failed.stderr, failed.stderr


def test_prepare_plans_the_postrender_of_patched_releases_and_of_all_with_a_registry(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for part in ("catalog", "values", "charts/own", "Pulumi.local.yaml", "Pulumi.dev.yaml"):
        source = ROOT / part
        (project / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project / part)
    catalog = yaml.safe_load((project / "catalog" / "releases.yaml").read_text())
    for release in catalog["releases"]:
        if release["name"] == "astrago":
            release["patches"] = True
    (project / "catalog" / "releases.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    write_patches(project, [{"path": "a.yaml"}], {"a.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}})
    deployment = resolve_stack("local", project, verify_charts=False)
    planned = {name: r.postrender for name, r in deployment.releases.items() if r.postrender}
    assert list(planned) == ["astrago"] and planned["astrago"].patches is not None and planned["astrago"].registry is None


def test_the_program_passes_the_wrapper_and_names_the_registry_and_pins_in_the_description(run_program: RunProgram) -> None:
    wrappers = ROOT / ".state" / "postrender" / "unit-postrender"
    shutil.rmtree(wrappers, ignore_errors=True)
    try:
        run = run_program("unit-postrender", overrides={"inherits": "local", "offline": {"registry": "reg.site:5000"}})
        releases = {r.inputs["name"]: r.inputs for r in run.of_type(RELEASE)}
        assert releases, "the local stack deploys releases"
        for name, inputs in releases.items():
            assert inputs["postrender"] == f".state/postrender/unit-postrender/{name}", "a relative path: the same on every machine"
            # No images lock in the checkout for this stack: the description says so by naming no pins (preview's preflight refuses it).
            assert inputs["description"].endswith("; images from reg.site:5000"), inputs["description"]
            assert (wrappers / name).stat().st_mode & 0o111, f"the wrapper of {name} is written and executable"
            assert "--lock images/unit-postrender.lock.yaml" in (wrappers / name).read_text()
    finally:
        shutil.rmtree(wrappers, ignore_errors=True)
    plain = {r.inputs["name"]: r.inputs for r in run_program("local").of_type(RELEASE)}
    assert all("postrender" not in inputs and "; " not in inputs["description"] for inputs in plain.values()), "no patches, no registry: no post-render"


def test_the_post_renders_refusal_is_read_back_out_of_helms_message() -> None:
    # helm 3.21 pkg/action/action.go and pkg/postrender/exec.go wrap the post-renderer's stderr so.
    def helm(ours: str) -> str:
        return (f"error while running post render on files: error while running command /p/.state/postrender/dev/astrago. "
                f"error output:\n{ours}\n: exit status 1")

    one = refusal("astrago", InputError("charts/patches/astrago/kustomization.yaml patches[1]: the target matches no object the chart rendered"))
    two = refusal("astrago", InputError("CronJob a spec.image: image r/a:1 is not in images/dev.lock.yaml", "Job b spec.image: image r/b:1 has no digest"))
    assert refused_problems(helm(one)) == ["charts/patches/astrago/kustomization.yaml patches[1]: the target matches no object the chart rendered"]
    assert refused_problems(helm(two)) == ["CronJob a spec.image: image r/a:1 is not in images/dev.lock.yaml", "Job b spec.image: image r/b:1 has no digest"]
    assert refused_problems("execution error at (astrago/templates/x.yaml:3:4): values.a is required") is None
