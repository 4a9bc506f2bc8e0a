"""The team's current settings (design/platform.md, "Settings of the team's current deployment").

One test per setting of that list: the resolved values of dev, stage and prod
(as `make values STACK=... RELEASE=...` prints them) carry it. Image registries
are checked online (no offline registry) and on an offline site; composite
values (Harbor's externalURL, the theme URL) follow the stack's settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from commands import ROOT
from model.catalog import load_catalog
from model.deployment import prepare
from model.settings import ReleaseOverride
from model.stackfile import stack_settings
from model.values import MASK, get_path

STACKS = ("dev", "stage", "prod")
HARBOR_IMAGES = {
    "nginx.image": "nginx-photon", "portal.image": "harbor-portal", "core.image": "harbor-core",
    "jobservice.image": "harbor-jobservice", "registry.registry.image": "registry-photon",
    "registry.controller.image": "harbor-registryctl", "trivy.image": "trivy-adapter-photon",
    "database.internal.image": "harbor-db", "redis.internal.image": "redis-photon", "exporter.image": "harbor-exporter",
}
HARBOR_VOLUMES = {"registry": "5Gi", "jobservice.jobLog": "1Gi", "database": "1Gi", "redis": "1Gi", "trivy": "5Gi"}
OFFLINE = {"registry": "10.61.3.9:5000", "fileServer": "http://10.61.3.9:8080/"}


def resolved(stack: str, release: str, charts: Path, offline: dict[str, str] | None = None) -> dict[str, Any]:
    """A release's resolved values in a stack (enabled even where the stack turns it off), secrets masked."""
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    settings = stack_settings(ROOT, stack, catalog, str(charts))
    overrides = dict(settings.releases)
    overrides[release] = dataclasses.replace(overrides.get(release, ReleaseOverride()), enabled=True)
    settings = dataclasses.replace(settings, releases=overrides, offline=offline if offline is not None else settings.offline)
    deployment = prepare(ROOT, catalog, settings, set(catalog.secret_keys()))
    return deployment.masked_values(release)


def cluster(stack: str) -> dict[str, Any]:
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    return stack_settings(ROOT, stack, catalog).cluster


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# --- prometheus -------------------------------------------------------------

def test_prometheus_keeps_a_year(stack: str, standin_charts: Path) -> None:
    assert get_path(resolved(stack, "prometheus", standin_charts), "prometheus.prometheusSpec.retention") == "1y"


def test_prometheus_discovers_service_monitors_of_every_release(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "prometheus", standin_charts)
    assert get_path(values, "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues") is False


def test_prometheus_scrapes_gpu_metrics(stack: str, standin_charts: Path) -> None:
    jobs = get_path(resolved(stack, "prometheus", standin_charts), "prometheus.prometheusSpec.additionalScrapeConfigs")
    assert [job["job_name"] for job in jobs] == ["gpu-metrics"]
    job = jobs[0]
    assert (job["scrape_interval"], job["metrics_path"], job["scheme"]) == ("1s", "/metrics", "http")
    assert job["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"names": ["gpu-operator"]}}]
    assert job["relabel_configs"] == [{"source_labels": ["__meta_kubernetes_pod_node_name"], "action": "replace", "target_label": "kubernetes_node"}]


def test_prometheus_storage(stack: str, standin_charts: Path) -> None:
    spec = get_path(resolved(stack, "prometheus", standin_charts), "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec")
    assert spec == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}, "storageClassName": "astrago-nfs-csi"}


def test_prometheus_and_alertmanager_on_node_ports(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "prometheus", standin_charts)
    assert get_path(values, "prometheus.service.type") == "NodePort"
    assert get_path(values, "alertmanager.service.type") == "NodePort"


def test_alertmanager_routes_astrago_alerts_to_the_product(stack: str, standin_charts: Path) -> None:
    config = get_path(resolved(stack, "prometheus", standin_charts), "alertmanager.config")
    assert config["global"] == {"resolve_timeout": "5m"}
    route = config["route"]
    assert (route["group_by"], route["group_wait"], route["group_interval"], route["repeat_interval"], route["receiver"]) == (
        ["nodeName", "ruleName"], "30s", "2m", "1h", "null")
    assert route["routes"] == [{"receiver": "webhook", "matchers": ['app = "astrago"']}]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"null", "webhook"}
    assert receivers["webhook"]["webhook_configs"] == [{"url": "http://astrago-backend-core.astrago.svc:8080/api/v1/core/alertManager/receive"}]
    assert config["templates"] == ["/etc/alertmanager/config/*.tmpl"]


# --- harbor -----------------------------------------------------------------

@pytest.mark.parametrize("offline", [None, OFFLINE], ids=["online", "offline"])
def test_harbor_images_are_v2_11_1_from_the_registry(stack: str, offline: dict[str, str] | None, standin_charts: Path) -> None:
    values = resolved(stack, "harbor", standin_charts, offline)
    prefix = "10.61.3.9:5000" if offline else "docker.io"
    for path, name in HARBOR_IMAGES.items():
        assert get_path(values, path) == {"repository": f"{prefix}/goharbor/{name}", "tag": "v2.11.1"}, path


def test_harbor_external_url_is_the_node_port_on_the_external_ip(stack: str, standin_charts: Path) -> None:
    assert resolved(stack, "harbor", standin_charts)["externalURL"] == f"http://{cluster(stack)['externalIP']}:30002"


def test_harbor_keeps_its_volumes(stack: str, standin_charts: Path) -> None:
    assert get_path(resolved(stack, "harbor", standin_charts), "persistence.resourcePolicy") == "keep"


def test_harbor_volumes_all_use_the_nfs_storage_class(stack: str, standin_charts: Path) -> None:
    claims = get_path(resolved(stack, "harbor", standin_charts), "persistence.persistentVolumeClaim")
    for path, size in HARBOR_VOLUMES.items():
        assert get_path(claims, path) == {"size": size, "storageClass": "astrago-nfs-csi"}, path


def test_harbor_exposed_on_plain_http_node_ports(stack: str, standin_charts: Path) -> None:
    expose = resolved(stack, "harbor", standin_charts)["expose"]
    assert expose["type"] == "nodePort"
    assert expose["tls"] == {"enabled": False}
    assert expose["nodePort"]["ports"] == {"http": {"nodePort": 30002}, "https": {"nodePort": 30003}}


def test_harbor_admin_password_is_a_secret(stack: str, standin_charts: Path) -> None:
    assert resolved(stack, "harbor", standin_charts)["harborAdminPassword"] == MASK


# --- keycloak ---------------------------------------------------------------

def test_keycloak_behind_an_edge_proxy_under_auth(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "keycloak", standin_charts)
    assert (values["proxy"], values["production"], values["httpRelativePath"]) == ("edge", True, "/auth/")


def test_keycloak_on_node_port_30001(stack: str, standin_charts: Path) -> None:
    assert resolved(stack, "keycloak", standin_charts)["service"] == {"type": "NodePort", "nodePorts": {"http": 30001}}


def test_keycloak_imports_the_realm_at_start(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "keycloak", standin_charts)
    assert {"name": "KEYCLOAK_EXTRA_ARGS", "value": "--import-realm"} in values["extraEnvVars"]
    volumes = {v["name"]: v for v in values["extraVolumes"]}
    assert volumes["realm-config"]["configMap"] == {"name": "realm-config"}
    assert {"name": "realm-config", "mountPath": "/opt/bitnami/keycloak/data/import"} in values["extraVolumeMounts"]
    addons = resolved(stack, "keycloak-addons", standin_charts)
    assert addons["realm"]["configMapName"] == "realm-config", "the ConfigMap keycloak-addons writes is the one mounted"


@pytest.mark.parametrize(("offline", "url", "image"), [
    (None, "https://github.com/xiilab/uyuni-login-theme/releases/download/v1.1.5/keycloak-theme.jar", "docker.io/curlimages/curl:8.10.1"),
    (OFFLINE, "http://10.61.3.9:8080/keycloak-theme.jar", "10.61.3.9:5000/curlimages/curl:8.10.1"),
], ids=["online", "offline"])
def test_keycloak_login_theme_fetched_by_an_init_container(stack: str, offline: dict[str, str] | None, url: str, image: str,
                                                           standin_charts: Path) -> None:
    values = resolved(stack, "keycloak", standin_charts, offline)
    [init] = values["initContainers"]
    assert init["image"] == image
    assert init["env"] == [{"name": "THEME_URL", "value": url}]
    assert "keycloak-theme.jar" in init["command"][-1]
    theme = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}["keycloak-theme"]
    assert {"name": "keycloak-theme", "mountPath": "/opt/bitnami/keycloak/providers"} in values["extraVolumeMounts"]
    assert theme == "/theme"


def test_keycloak_global_image_registry_is_the_offline_registry(stack: str, standin_charts: Path) -> None:
    assert "imageRegistry" not in resolved(stack, "keycloak", standin_charts).get("global", {})
    assert resolved(stack, "keycloak", standin_charts, OFFLINE)["global"]["imageRegistry"] == "10.61.3.9:5000"


# --- gpu-operator -----------------------------------------------------------

def test_gpu_operator_manages_driver_and_toolkit(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "gpu-operator", standin_charts)
    # Not set: the chart's defaults (driver.enabled, toolkit.enabled true) apply, as with the team's values.
    assert get_path(values, "driver.enabled") in (None, True)
    assert get_path(values, "toolkit.enabled") in (None, True)


def test_gpu_operator_nfd_and_control_plane_tolerations(stack: str, standin_charts: Path) -> None:
    master = get_path(resolved(stack, "gpu-operator", standin_charts), "node-feature-discovery.master")
    assert master["extraLabelNs"] == ["nvidia.com"]
    assert [(t["key"], t["effect"]) for t in master["tolerations"]] == [
        ("node-role.kubernetes.io/master", "NoSchedule"), ("node-role.kubernetes.io/control-plane", "NoSchedule")]


def test_gpu_operator_values_have_no_unread_gpu_operator_block(stack: str, standin_charts: Path) -> None:
    assert "gpu-operator" not in resolved(stack, "gpu-operator", standin_charts)


# --- nfs-provisioner --------------------------------------------------------

@pytest.mark.parametrize("offline", [None, OFFLINE], ids=["online", "offline"])
def test_nfs_images_and_tags(stack: str, offline: dict[str, str] | None, standin_charts: Path) -> None:
    values = resolved(stack, "nfs-provisioner", standin_charts, offline)
    image = values["image"]
    # The chart writes baseRepo before a repository that starts with '/'.
    assert image["baseRepo"] == ("10.61.3.9:5000" if offline else "registry.k8s.io")
    tags = {key: (entry["repository"], entry["tag"]) for key, entry in image.items() if isinstance(entry, dict)}
    assert tags == {
        "nfs": ("/sig-storage/nfsplugin", "v4.7.0"), "csiProvisioner": ("/sig-storage/csi-provisioner", "v4.0.0"),
        "csiSnapshotter": ("/sig-storage/csi-snapshotter", "v6.3.3"), "livenessProbe": ("/sig-storage/livenessprobe", "v2.12.0"),
        "nodeDriverRegistrar": ("/sig-storage/csi-node-driver-registrar", "v2.10.0"),
        "externalSnapshotter": ("/sig-storage/snapshot-controller", "v6.3.3"),
    }


def test_nfs_mount_permissions_and_storage_class(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "nfs-provisioner", standin_charts)
    assert values["driver"]["mountPermissions"] == "0777"
    nfs = cluster(stack)["nfs"]
    storage_class = values["storageClass"]
    assert (storage_class["create"], storage_class["name"]) == (True, "astrago-nfs-csi")
    assert storage_class["parameters"] == {"server": nfs["server"], "share": nfs["path"]}


# --- flux, mpi-operator -----------------------------------------------------

def test_flux_images_from_ghcr_or_the_offline_registry(stack: str, standin_charts: Path) -> None:
    controllers = ("helmController", "sourceController", "kustomizeController", "notificationController",
                   "imageAutomationController", "imageReflectionController", "cli")
    online = resolved(stack, "flux", standin_charts)
    # Online the chart's own ghcr.io/fluxcd/* images with its pinned tags run, as the team's values left them.
    assert all("image" not in online.get(c, {}) for c in controllers)
    offline = resolved(stack, "flux", standin_charts, OFFLINE)
    for controller in controllers:
        assert offline[controller]["image"].startswith("10.61.3.9:5000/fluxcd/"), controller


@pytest.mark.parametrize(("offline", "registry"), [(None, "docker.io"), (OFFLINE, "10.61.3.9:5000")], ids=["online", "offline"])
def test_mpi_operator_image(stack: str, offline: dict[str, str] | None, registry: str, standin_charts: Path) -> None:
    assert resolved(stack, "mpi-operator", standin_charts, offline)["image"] == {"registry": registry, "repository": "mpioperator/mpi-operator"}


# --- astrago ----------------------------------------------------------------

def test_astrago_node_port_and_images(stack: str, standin_charts: Path) -> None:
    values = resolved(stack, "astrago", standin_charts)
    assert values["proxy"]["service"] == {"type": "NodePort", "nodePort": 30080}
    for component in ("core", "batch", "monitor", "frontend"):
        assert values[component]["image"]["tag"].startswith(f"{component}-{stack}-"), component
    assert resolved(stack, "astrago", standin_charts, OFFLINE)["global"]["imageRegistry"] == "10.61.3.9:5000"
    for key in ("keycloak.clientSecret", "mariadb.rootPassword", "mariadb.password", "core.initialUserPassword"):
        assert get_path(values, key) == MASK, key
