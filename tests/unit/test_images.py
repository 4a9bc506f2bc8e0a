"""Images in rendered objects (model/images.py), the images lock (model/images_lock.py) and the digest pin (postrender/images.py).

Objects are shaped like what the upstream charts render: kube-prometheus-stack's
operator passes the config reloader as a container argument, gpu-operator's
ClusterPolicy names its operands as {repository, image, version} with the
validator's version left to the operator, bitnami charts use
{registry, repository, tag} maps in custom resources.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.errors import InputError
from model.images import (
    RuntimeImage,
    annotation_images,
    canonical,
    image_fields,
    load_runtime_declarations,
    parse_reference,
    release_images,
    runtime_images,
    strict_reference,
)
from model.images_lock import ImagesLock, LockedImage, load_images_lock, write_images_lock
from postrender.images import pin_images

ROOT = Path(__file__).resolve().parents[2]
RELOADER = "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64

OPERATOR: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "prometheus-operator", "namespace": "prometheus"},
    "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{
            "name": "operator", "image": "quay.io/prometheus-operator/prometheus-operator:v0.75.2",
            "args": ["--kubelet-service=kube-system/kubelet", f"--prometheus-config-reloader={RELOADER}",
                     "--thanos-default-base-image=quay.io/thanos/thanos:v0.35.1", "--web.listen-address=:8080"],
            "env": [{"name": "SIDECAR_IMAGE", "value": "grafana/k8s-sidecar:1.27.4"},
                    {"name": "HOME_URL", "value": "https://quay.io/prometheus/x:1"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        }],
    }}},
}
CLUSTER_POLICY: dict[str, Any] = {
    "apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
    "spec": {
        "operator": {"defaultRuntime": "containerd"},
        "driver": {"enabled": False, "repository": "nvcr.io/nvidia", "image": "driver", "version": "550.127.05"},
        "toolkit": {"enabled": True, "repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit", "version": "v1.17.0-ubuntu20.04"},
        "validator": {"repository": "nvcr.io/nvidia/cloud-native", "image": "gpu-operator-validator"},
        "dcgmExporter": {"registry": "nvcr.io", "repository": "nvidia/k8s/dcgm-exporter", "tag": "3.3.9-3.6.0-ubuntu22.04"},
    },
}
CONFIG_MAP: dict[str, Any] = {
    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "x"}},
    "data": {"config.yaml": "reloader: registry.k8s.io/pause:3.10\nlabel: app.kubernetes.io/name\nport: 8080\nurl: http://example.com:80/a:b\n",
             "plain": "nginx:1.27 docker.io/library/redis"},
}


def refs(obj: dict[str, Any]) -> list[str]:
    return [str(f.reference) for f in image_fields(obj) if f.reference]


def test_references_are_read_as_container_runtimes_read_them() -> None:
    assert str(parse_reference("nginx")) == "docker.io/library/nginx:latest"
    assert str(parse_reference("grafana/grafana:11.1.0")) == "docker.io/grafana/grafana:11.1.0"
    assert str(parse_reference("localhost:5000/a/b@" + DIGEST_A)) == f"localhost:5000/a/b@{DIGEST_A}"
    assert canonical("registry-1.docker.io/bitnami/redis:7") == "docker.io/bitnami/redis:7"
    assert parse_reference("Not A Ref") is None and parse_reference("https://quay.io/x:1") is None
    quay = parse_reference("quay.io/a:1")
    assert quay is not None and str(quay.at("reg.site:5000/mirror")) == "reg.site:5000/mirror/a:1"


@pytest.mark.parametrize(("word", "image"), [
    ("quay.io/prometheus/prometheus:v2.54.1", True),
    ("localhost:5000/x:1", True),
    ("registry.k8s.io/pause@" + DIGEST_A, True),
    ("nginx:1.27", False),                      # no registry host: too much free text looks like this
    ("docker.io/library/redis", False),          # no tag: not a complete reference
    ("app.kubernetes.io/name", False),
    ("kubernetes.io/os:", False),
    ("8080", False),
    ("https://quay.io/x:1", False),
])
def test_free_text_counts_only_complete_references_with_a_registry(word: str, image: bool) -> None:
    assert (strict_reference(word) is not None) is image


def test_container_images_args_and_env_of_a_workload() -> None:
    assert refs(OPERATOR) == [
        "docker.io/library/busybox:latest",
        "quay.io/prometheus-operator/prometheus-operator:v0.75.2",
        RELOADER,
        "quay.io/thanos/thanos:v0.35.1",
        "docker.io/grafana/k8s-sidecar:1.27.4",
    ]
    paths = [f.path_text() for f in image_fields(OPERATOR)]
    assert "spec.template.spec.containers[0].args[1]" in paths and "spec.template.spec.containers[0].env[0].value" in paths


def test_a_cluster_policy_names_triples_and_leaves_the_validator_version_to_the_operator() -> None:
    fields = image_fields(CLUSTER_POLICY)
    assert [str(f.reference) for f in fields if f.reference] == [
        "nvcr.io/nvidia/k8s/container-toolkit:v1.17.0-ubuntu20.04", "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.0-ubuntu22.04",
    ], "the disabled driver is not started"
    [unknown] = [f for f in fields if f.reference is None]
    assert unknown.path_text() == "spec.validator" and unknown.unknown == "nvcr.io/nvidia/cloud-native/gpu-operator-validator (version is not given)"


def test_an_unknown_tag_is_an_error_naming_the_chart_and_field_unless_declared() -> None:
    uses, problems = release_images([CLUSTER_POLICY], "gpu-operator", ())
    assert problems == ["chart 'gpu-operator': ClusterPolicy cluster-policy spec.validator names image nvcr.io/nvidia/cloud-native/gpu-operator-validator "
                        "(version is not given) whose tag the chart leaves to its software at run time; declare the image it starts under "
                        "`gpu-operator:` in catalog/runtime-images.yaml"]
    declared = (RuntimeImage("nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0", "the operator's own version"),)
    uses, problems = release_images([CLUSTER_POLICY], "gpu-operator", declared)
    assert problems == []
    assert {u.reference for u in uses} >= {"nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0"}
    assert any(u.where == "ClusterPolicy cluster-policy spec.validator" and u.declared for u in uses)


def test_config_map_data_and_annotations_count_only_complete_references() -> None:
    assert refs(CONFIG_MAP) == ["registry.k8s.io/pause:3.10"]


def test_crds_hooks_and_bitnami_maps_in_custom_resources() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x"},
           "spec": {"versions": [{"schema": {"containers": [{"image": "quay.io/not/run:1"}]}}]}}
    assert image_fields(crd) == []
    hook = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "h", "annotations": {"helm.sh/hook": "pre-install"}},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "docker.io/bitnami/kubectl:1.31"}]}}}}
    cr = {"apiVersion": "example.com/v1", "kind": "Cache", "metadata": {"name": "c"},
          "spec": {"image": {"registry": "docker.io", "repository": "bitnami/redis", "tag": "7.4.1"},
                   "exporterImage": "oliver006/redis_exporter:v1.62.0", "thanos": {"image": "quay.io/thanos/thanos", "version": ""}}}
    uses, problems = release_images([hook, cr], "x", ())
    assert [(u.reference, u.hook) for u in uses] == [
        ("docker.io/bitnami/kubectl:1.31", True), ("docker.io/bitnami/redis:7.4.1", False), ("docker.io/oliver006/redis_exporter:v1.62.0", False)]
    assert len(problems) == 1 and "Cache c spec.thanos.image names image quay.io/thanos/thanos (version is empty)" in problems[0]


def test_chart_annotations_list_images() -> None:
    meta = {"annotations": {"artifacthub.io/images": "- name: op\n  image: quay.io/a/op:v1\n- name: bad\n  image: 'no such'\n"}}
    assert annotation_images(meta) == [("quay.io/a/op:v1", "artifacthub.io/images")]


def test_runtime_declarations_are_schema_checked_and_fill_the_chart_version(tmp_path: Path) -> None:
    data = load_runtime_declarations(ROOT)
    validator, driver = runtime_images(data, "gpu-operator", {"appVersion": "v24.9.0", "version": "v24.9.0"})
    assert validator.reference == "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0" and not validator.replaces
    assert driver.reference == "nvcr.io/nvidia/driver:{tag}-ubuntu22.04" and driver.replaces
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "runtime-images.yaml").write_text(yaml.safe_dump({"charts": {"x": [{"reference": "quay.io/a:1"}]}}))
    with pytest.raises(InputError, match=r"catalog/runtime-images.yaml line 3: charts.x\[0\]: missing key why"):
        load_runtime_declarations(tmp_path)


# --- the lock --------------------------------------------------------------------------------

def lock(registry: str | None = "reg.site:5000") -> ImagesLock:
    return ImagesLock("site", registry, (
        LockedImage(RELOADER, ("prometheus",), digest=DIGEST_A, size=10, platforms=("linux/amd64",)),
        LockedImage("docker.io/grafana/k8s-sidecar:1.27.4", ("prometheus",), digest=DIGEST_B, size=20),
        LockedImage("docker.io/library/busybox:latest", ("prometheus",), digest=DIGEST_B, size=1),
        LockedImage("quay.io/prometheus-operator/prometheus-operator:v0.75.2", ("prometheus",), digest=DIGEST_A, size=5),
        LockedImage("quay.io/thanos/thanos:v0.35.1", ("prometheus",)),
        LockedImage("docker.io/bitnami/kubectl:1.31", ("keycloak",), in_hooks=True),
    ))


def test_the_lock_round_trips_and_keeps_fetch_facts_when_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "images" / "site.lock.yaml"
    write_images_lock(lock(), path)
    assert load_images_lock(path) == lock()
    fresh = ImagesLock("site", "reg.site:5000", tuple(LockedImage(i.reference, i.releases, in_hooks=i.in_hooks) for i in lock().images))
    assert fresh.keep_fetched(load_images_lock(path)) == lock()
    assert fresh.with_fetched(RELOADER, digest=DIGEST_B, size=3).by_reference()[RELOADER].digest == DIGEST_B
    warnings = lock().warnings()
    assert any(line.startswith("warning: docker.io/bitnami/kubectl:1.31 (keycloak) is named only by Helm hooks") for line in warnings)
    path.write_text(path.read_text().replace(DIGEST_A, "sha256:short"))
    with pytest.raises(InputError, match=r"site.lock.yaml line 8: images\[0\].digest: 'sha256:short' does not match .*; run `make images` again"):
        load_images_lock(path)


# --- the digest pin ----------------------------------------------------------------------------

def test_every_image_moves_to_the_site_registry_pinned_to_its_digest() -> None:
    pinned_lock = lock()
    pinned_lock = pinned_lock.with_fetched("quay.io/thanos/thanos:v0.35.1", digest=DIGEST_B, size=1)
    [out], problems = pin_images([copy.deepcopy(OPERATOR)], pinned_lock, "reg.site:5000", "images/site.lock.yaml")
    assert problems == []
    spec = out["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["image"] == f"reg.site:5000/library/busybox:latest@{DIGEST_B}"
    container = spec["containers"][0]
    assert container["image"] == f"reg.site:5000/prometheus-operator/prometheus-operator:v0.75.2@{DIGEST_A}"
    assert container["args"][1] == f"--prometheus-config-reloader=reg.site:5000/prometheus-operator/prometheus-config-reloader:v0.75.2@{DIGEST_A}"
    assert container["args"][0] == "--kubelet-service=kube-system/kubelet" and container["args"][3] == "--web.listen-address=:8080"
    assert container["env"][0]["value"] == f"reg.site:5000/grafana/k8s-sidecar:1.27.4@{DIGEST_B}"
    assert container["env"][1]["value"] == "https://quay.io/prometheus/x:1"
    assert OPERATOR["spec"]["template"]["spec"]["containers"][0]["image"].startswith("quay.io/"), "the input is not changed"


def test_an_image_the_lock_lacks_or_holds_without_digest_is_refused_by_name() -> None:
    _, problems = pin_images([copy.deepcopy(OPERATOR), copy.deepcopy(CONFIG_MAP)], lock(), "reg.site:5000", "images/site.lock.yaml")
    assert problems == [
        "Deployment prometheus/prometheus-operator spec.template.spec.containers[0].args[2]: image quay.io/thanos/thanos:v0.35.1 has no digest in "
        "images/site.lock.yaml; run `make bundle` (it fetches the image and records its digest)",
        "ConfigMap x data.config.yaml: image registry.k8s.io/pause:3.10 is not in images/site.lock.yaml; run `make images` then `make bundle` for this stack",
    ]


def test_an_image_the_chart_already_renders_at_the_site_registry_is_pinned_too() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "reg.site:5000/grafana/k8s-sidecar:1.27.4"}]}}
    [out], problems = pin_images([pod], lock(), "reg.site:5000", "images/site.lock.yaml")
    assert problems == [] and out["spec"]["containers"][0]["image"] == f"reg.site:5000/grafana/k8s-sidecar:1.27.4@{DIGEST_B}"


def test_triples_move_their_registry_and_take_the_digest_where_the_software_reads_one() -> None:
    policy = copy.deepcopy(CLUSTER_POLICY)
    policy["spec"]["validator"]["version"] = "v24.9.0"
    site = ImagesLock("site", "reg.site:5000", (
        LockedImage("nvcr.io/nvidia/k8s/container-toolkit:v1.17.0-ubuntu20.04", ("gpu-operator",), digest=DIGEST_A),
        LockedImage("nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.0-ubuntu22.04", ("gpu-operator",), digest=DIGEST_B),
        LockedImage("nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0", ("gpu-operator",), digest=DIGEST_A),
    ))
    [out], problems = pin_images([policy], site, "reg.site:5000", "images/site.lock.yaml")
    assert problems == []
    spec = out["spec"]
    assert spec["toolkit"] == {"enabled": True, "repository": "reg.site:5000/nvidia/k8s", "image": "container-toolkit", "version": DIGEST_A}
    assert spec["validator"] == {"repository": "reg.site:5000/nvidia/cloud-native", "image": "gpu-operator-validator", "version": DIGEST_A}
    assert spec["dcgmExporter"] == {"registry": "reg.site:5000", "repository": "nvidia/k8s/dcgm-exporter", "tag": "3.3.9-3.6.0-ubuntu22.04"}
    assert spec["driver"] == CLUSTER_POLICY["spec"]["driver"], "a disabled operand is left as it is"


def test_a_replacing_declaration_names_the_tag_the_software_runs_and_the_pin_finds_it_by_field() -> None:
    """gpu-operator appends the node's OS to spec.driver.version: the declared image is what runs, and what the site pins."""
    policy = copy.deepcopy(CLUSTER_POLICY)
    policy["spec"]["driver"]["enabled"] = True
    declared = (RuntimeImage("nvcr.io/nvidia/driver:{tag}-ubuntu22.04", "the operator appends the node's OS", replaces=True),
                RuntimeImage("nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0", "the operator's own version"))
    uses, problems = release_images([policy], "gpu-operator", declared)
    assert problems == []
    at_driver = [u.reference for u in uses if u.where == "ClusterPolicy cluster-policy spec.driver"]
    assert at_driver == ["nvcr.io/nvidia/driver:550.127.05-ubuntu22.04"], "the rendered 550.127.05 is not what runs"
    assert "nvcr.io/nvidia/driver:550.127.05" not in {u.reference for u in uses}
    site = ImagesLock("site", "reg.site:5000", tuple(
        LockedImage(ref, ("gpu-operator",), tuple(sorted(f"gpu-operator: {u.where}" for u in uses if u.reference == ref)), digest=DIGEST_A)
        for ref in sorted({u.reference for u in uses})))
    [out], problems = pin_images([policy], site, "reg.site:5000", "images/site.lock.yaml", "gpu-operator")
    assert problems == []
    assert out["spec"]["driver"] == {"enabled": True, "repository": "reg.site:5000/nvidia", "image": "driver", "version": DIGEST_A}
    assert out["spec"]["validator"] == {"repository": "reg.site:5000/nvidia/cloud-native", "image": "gpu-operator-validator", "version": DIGEST_A}
    _, unlocated = pin_images([policy], site, "reg.site:5000", "images/site.lock.yaml", "another-release")
    assert any("spec.validator: image nvcr.io/nvidia/cloud-native/gpu-operator-validator (version is not given), whose tag the software fills in, is not in" in p
               for p in unlocated), unlocated
