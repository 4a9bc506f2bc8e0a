"""The realistic stand-ins of the external charts (tests/realistic_charts): packaged, locked, rendered.

They are what every tool of the project is tested against, so this checks
that they stay as hard as the upstream charts: the features that broke the
tools render (objects in kube-system, cluster-scoped objects, CRDs, hooks,
webhooks, capability checks, generated secrets, the bitnami upgrade check,
images in args, env and custom resources, claims with storage classes), and
the catalog's settings reach the upstream value paths.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.charts import load_declared, sha256_file, verify_lock
from model.deployment import resolve_stack
from tests.support.chart_repo import require_helm
from tests.support.standin_charts import REALISTIC_CHARTS, build_realistic_charts_dir, realistic_chart_version, realistic_images

ROOT = Path(__file__).resolve().parents[2]
KUBE = "1.36.3"
# What a live cluster with the operator's CRDs answers beyond `helm template`'s defaults.
LIVE_CAPABILITIES = ("--api-versions", "monitoring.coreos.com/v1", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
                     "--api-versions", "discovery.k8s.io/v1/EndpointSlice")


@pytest.fixture(scope="module")
def charts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_realistic_charts_dir(tmp_path_factory.mktemp("realistic"))


def _helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(require_helm()), *args], capture_output=True, text=True, timeout=180)
    if check:
        assert result.returncode == 0, f"helm {' '.join(args[:3])} failed:\n{result.stderr[-3000:]}"
    return result


def _objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]


def _archive(charts_dir: Path, name: str) -> str:
    chart = load_declared(charts_dir)[name]
    return str(charts_dir / "external" / f"{name}-{chart.version}.tgz")


def test_every_declared_chart_has_a_stand_in_with_its_name_version_and_images(charts_dir: Path) -> None:
    declared = load_declared(ROOT / "charts")
    assert {p.name for p in REALISTIC_CHARTS.iterdir() if (p / "Chart.yaml").is_file()} == set(declared)
    for name, chart in declared.items():
        assert realistic_chart_version(name) == chart.version, name
    images = realistic_images()
    assert set(images) == set(declared), "every chart lists the images it starts (tests/realistic_charts/<chart>.images)"
    assert all(refs and all(":" in r for r in refs) for refs in images.values()), images
    verify_lock(charts_dir, set(declared))  # raises on any mismatch of lock, declaration and archives


def test_archives_are_reproducible(charts_dir: Path, tmp_path: Path) -> None:
    again = build_realistic_charts_dir(tmp_path / "again")
    for name in load_declared(charts_dir):
        first, second = Path(_archive(charts_dir, name)), Path(_archive(again, name))
        assert sha256_file(first) == sha256_file(second), f"{name}: two builds of the same sources differ"
    assert (charts_dir / "versions.lock").read_text() == (again / "versions.lock").read_text()


@pytest.mark.parametrize("name", sorted(load_declared(ROOT / "charts")))
def test_each_archive_lints_and_renders_with_defaults_and_the_clusters_version(charts_dir: Path, name: str) -> None:
    archive = _archive(charts_dir, name)
    _helm("lint", archive)
    assert _objects(_helm("template", name, archive, "-n", name).stdout)
    rendered = _objects(_helm("template", name, archive, "-n", name, "--kube-version", KUBE, *LIVE_CAPABILITIES, "--include-crds").stdout)
    assert rendered, name
    # What the API server would refuse (a number in a ConfigMap's data, an object without a name).
    for obj in rendered:
        assert obj.get("metadata", {}).get("name"), f"{name}: a {obj['kind']} without a name"
        if obj["kind"] in ("ConfigMap", "Secret"):
            bad = [k for k, v in (obj.get("data") or {}).items() if not isinstance(v, str)]
            assert not bad, f"{name}: {obj['kind']} {obj['metadata']['name']} has data that is not a string: {bad}"


def test_kube_prometheus_stack_is_as_big_and_as_spread_as_upstream(charts_dir: Path) -> None:
    archive = _archive(charts_dir, "kube-prometheus-stack")
    offline = _objects(_helm("template", "prometheus", archive, "-n", "prometheus").stdout)
    live = _objects(_helm("template", "prometheus", archive, "-n", "prometheus", "--kube-version", KUBE, *LIVE_CAPABILITIES, "--include-crds").stdout)
    crds = [o for o in live if o["kind"] == "CustomResourceDefinition"]
    assert len(offline) >= 120 and len(crds) == 10, (len(offline), len(crds))
    assert any(len(Path(p).read_text()) > 262144 for p in (REALISTIC_CHARTS / "kube-prometheus-stack/charts/crds/crds").glob("*.yaml")), \
        "the workload CRDs exceed client-side apply's annotation limit, as upstream"
    in_kube_system = {o["metadata"]["name"] for o in offline if o["metadata"].get("namespace") == "kube-system"}
    assert {"prometheus-kube-prometheus-coredns", "prometheus-kube-prometheus-kube-etcd"} <= in_kube_system, in_kube_system
    cluster_scoped = {o["kind"] for o in offline if "namespace" not in o["metadata"]}
    assert {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} <= cluster_scoped
    hooks = {o["metadata"]["name"]: o["metadata"]["annotations"]["helm.sh/hook"] for o in offline if o["kind"] == "Job"}
    assert hooks == {"prometheus-kube-prometheus-operator-admission-create": "pre-install,pre-upgrade",
                     "prometheus-kube-prometheus-operator-admission-patch": "post-install,post-upgrade"}, hooks

    def rules(objs: list[dict[str, Any]]) -> list[Any]:
        return [r for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "prometheus-kube-prometheus-prometheus" for r in o["rules"]]
    assert not any("endpointslices" in r.get("resources", []) for r in rules(offline))
    assert any("endpointslices" in r.get("resources", []) for r in rules(live)), "Kind-level capability check"
    monitors = lambda objs: {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceMonitor"}  # noqa: E731
    assert "prometheus-prometheus-node-exporter" in monitors(live) - monitors(offline), "group/version capability check"
    operator = next(o for o in offline if o["kind"] == "Deployment" and o["metadata"]["name"] == "prometheus-kube-prometheus-operator")
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2" in args
    prometheus = next(o for o in offline if o["kind"] == "Prometheus")
    assert prometheus["spec"]["image"] == "quay.io/prometheus/prometheus:v2.54.0"


def test_harbor_generates_new_keys_on_every_render(charts_dir: Path) -> None:
    archive = _archive(charts_dir, "harbor")
    first, second = (_objects(_helm("template", "harbor", archive, "-n", "harbor").stdout) for _ in range(2))

    def secret(objs: list[dict[str, Any]], name: str) -> dict[str, str]:
        return next(o["data"] for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == name)
    for name, key in (("harbor-core", "secret"), ("harbor-core", "tls.crt"), ("harbor-jobservice", "JOBSERVICE_SECRET"),
                      ("harbor-registry", "REGISTRY_HTTP_SECRET"), ("harbor-registry-htpasswd", "REGISTRY_HTPASSWD"), ("harbor-ingress", "tls.crt")):
        assert secret(first, name)[key] != secret(second, name)[key], f"{name}.{key} is generated on every render"
    checksums = [next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "harbor-core")
                 ["spec"]["template"]["metadata"]["annotations"]["checksum/secret"] for objs in (first, second)]
    assert checksums[0] != checksums[1]


def test_keycloak_refuses_an_upgrade_without_the_current_passwords_and_checks_its_schema(charts_dir: Path) -> None:
    archive = _archive(charts_dir, "keycloak")
    upgrade = _helm("template", "keycloak", archive, "-n", "keycloak", "--is-upgrade", "--set", "auth.adminPassword=x", check=False)
    assert upgrade.returncode != 0 and "PASSWORDS ERROR: You must provide your current passwords when upgrading the release" in upgrade.stderr
    assert "global.postgresql.auth.postgresPassword" in upgrade.stderr, upgrade.stderr
    bad = _helm("template", "keycloak", archive, "-n", "keycloak", "--set", "replicaCount=two", check=False)
    assert bad.returncode != 0 and "/replicaCount" in bad.stderr, bad.stderr
    passwords = ("--set", "auth.adminPassword=a", "--set", "postgresql.auth.password=b", "--set", "postgresql.auth.postgresPassword=c")
    ok = _objects(_helm("template", "keycloak", archive, "-n", "keycloak", "--is-upgrade", *passwords,
                        "--set", "global.storageClass=astrago-nfs-csi", "--set", "global.imageRegistry=registry.site:5000").stdout)
    database = next(o for o in ok if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "keycloak-postgresql")
    assert database["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "astrago-nfs-csi", "global.storageClass reaches the subchart"
    images = {c["image"] for o in ok if o["kind"] == "StatefulSet" for c in o["spec"]["template"]["spec"]["containers"]}
    assert all(i.startswith("registry.site:5000/") for i in images), images


def test_gpu_operator_leaves_the_validator_version_to_the_operator(charts_dir: Path) -> None:
    objs = _objects(_helm("template", "gpu-operator", _archive(charts_dir, "gpu-operator"), "-n", "gpu-operator").stdout)
    policy = next(o for o in objs if o["kind"] == "ClusterPolicy")
    assert "namespace" not in policy["metadata"]
    assert policy["spec"]["validator"]["image"] == "gpu-operator-validator" and "version" not in policy["spec"]["validator"]
    assert policy["spec"]["driver"]["version"] == "550.127.05"
    operator = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "gpu-operator")
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DRIVER_MANAGER_IMAGE"] == "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.7.0"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_catalogs_settings_reach_the_upstream_value_paths(charts_dir: Path, stack: str, tmp_path: Path) -> None:
    """Every external release renders with the stack's values; storage classes and NFS facts land where upstream reads them."""
    deployment = resolve_stack(stack, ROOT, charts_dir=str(charts_dir))
    rendered: dict[str, list[dict[str, Any]]] = {}
    for release in deployment.releases.values():
        if release.source == "local":
            continue
        values = tmp_path / f"{release.name}.yaml"
        values.write_text(yaml.safe_dump(deployment.masked_values(release.name)))
        out = _helm("template", release.name, release.chart_path, "-n", release.namespace, "-f", str(values), "--kube-version", KUBE)
        rendered[release.name] = _objects(out.stdout)
    storage = next(o for o in rendered["nfs-provisioner"] if o["kind"] == "StorageClass")
    assert storage["metadata"]["name"] == "astrago-nfs-csi" and storage["parameters"]["server"], storage
    prometheus = next(o for o in rendered["prometheus"] if o["kind"] == "Prometheus")
    assert prometheus["spec"]["storage"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "astrago-nfs-csi"
    loki = next(o for o in rendered["loki-stack"] if o["kind"] == "StatefulSet")
    assert loki["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "astrago-nfs-csi"
    keycloak = next(o for o in rendered["keycloak"] if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "keycloak-postgresql")
    assert keycloak["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "astrago-nfs-csi"
    if "harbor" in rendered:
        claims = [o for o in rendered["harbor"] if o["kind"] == "PersistentVolumeClaim"]
        claims += [t for o in rendered["harbor"] if o["kind"] == "StatefulSet" for t in o["spec"].get("volumeClaimTemplates", [])]
        assert len(claims) == 5, [c["metadata"]["name"] for c in claims]


def _pod_images(obj: dict[str, Any]) -> set[str]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec") if obj["kind"] != "Pod" else spec
    pod = pod or spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
    return {c["image"] for key in ("containers", "initContainers") for c in pod.get(key) or []}


@pytest.mark.parametrize("name", sorted(load_declared(ROOT / "charts")))
def test_the_images_list_holds_every_image_of_a_pod_spec(charts_dir: Path, name: str) -> None:
    """<chart>.images is kept with the templates: every container image rendered with defaults is in it."""
    objs = _objects(_helm("template", name, _archive(charts_dir, name), "-n", name, "--kube-version", KUBE, *LIVE_CAPABILITIES).stdout)
    rendered = set().union(*(_pod_images(o) for o in objs))
    listed = realistic_images()[name]
    assert rendered, name
    assert rendered <= listed, f"{name}: images rendered but not in tests/realistic_charts/{name}.images: {sorted(rendered - listed)}"
