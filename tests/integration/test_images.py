"""The images list of a stack, rendered by the real helm from charts synced from a real repository on 127.0.0.1.

Stand-ins of the external charts carry every workload kind, a Helm hook, a
chart test, images named only in values (operator style, bitnami style,
plain strings, a subchart's defaults) and parts switched off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from commands.charts import sync
from commands.images import ImagesLock, collect, lock_path
from commands.values import resolve_stack
from model.errors import InputError
from model.values import MASK
from tests.chart_repo import index, package, serve, write_standin

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "registry.site.local:5000"
STANDIN_IMAGE = "registry.invalid/standin:1.0"

CONTAINER = "{{name: {name}, image: {image}}}"
SELECTOR = "selector: {{matchLabels: {{app: {app}}}}}"
TEMPLATE = "template: {{metadata: {{labels: {{app: {app}}}}}, spec: {{containers: [{container}]}}}}"


def _workload(kind: str, api: str, app: str, image: str) -> str:
    container = CONTAINER.format(name="main", image=image)
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {app}}}\nspec:\n  {SELECTOR.format(app=app)}\n  {TEMPLATE.format(app=app, container=container)}\n"


WORKLOADS = "\n---\n".join([
    "apiVersion: v1\nkind: Pod\nmetadata: {name: standin-pod}\nspec:\n"
    "  initContainers: [{name: init, image: standin.example/pod-init:1}]\n"
    "  containers: [{name: main, image: standin.example/pod-main:1}]\n"
    "  ephemeralContainers: [{name: debug, image: standin.example/pod-debug:1}]\n",
    _workload("StatefulSet", "apps/v1", "standin-sts", "standin.example/statefulset:1"),
    _workload("DaemonSet", "apps/v1", "standin-ds", "standin.example/daemonset:1"),
    _workload("ReplicaSet", "apps/v1", "standin-rs", "standin.example/replicaset:1"),
    "apiVersion: batch/v1\nkind: Job\nmetadata: {name: standin-job}\nspec:\n"
    "  template: {spec: {restartPolicy: Never, containers: [{name: main, image: standin.example/job:1}]}}\n",
    "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: standin-cron}\nspec:\n  schedule: '* * * * *'\n"
    "  jobTemplate: {spec: {template: {spec: {restartPolicy: Never,\n"
    "    initContainers: [{name: init, image: standin.example/cronjob-init:1}],\n"
    "    containers: [{name: main, image: standin.example/cronjob:1}]}}}}\n",
    "apiVersion: batch/v1\nkind: Job\nmetadata: {name: standin-hook, annotations: {helm.sh/hook: pre-install}}\nspec:\n"
    "  template: {spec: {restartPolicy: Never, containers: [{name: main, image: standin.example/hook:1}]}}\n",
])
CHART_TEST = ("apiVersion: v1\nkind: Pod\nmetadata: {name: standin-test, annotations: {helm.sh/hook: test}}\n"
              "spec: {containers: [{name: main, image: standin.example/test-only:1}]}\n")
# What the stand-ins render (by kind) and name in values; and what they must not list.
RENDERED = {
    "standin.example/pod-init:1", "standin.example/pod-main:1", "standin.example/pod-debug:1", "standin.example/statefulset:1",
    "standin.example/daemonset:1", "standin.example/replicaset:1", "standin.example/job:1", "standin.example/cronjob-init:1",
    "standin.example/cronjob:1",
}
HOOK = "standin.example/hook:1"
FROM_VALUES = {
    "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0": "gpu-operator",
    "docker.io/bitnami/keycloak-config-cli:6.1.6-debian-12-r0": "keycloak",
    "quay.io/standin/sidecar:2.0": "keycloak",
    "grafana/grafana:11.1.0": "prometheus",
}
NOT_LISTED = {
    "standin.example/test-only:1",  # a chart test: an install never runs it
    "nvcr.io/nvidia/driver:550.127.05",  # values/gpu-operator.yaml sets driver.enabled false
    "docker.io/bitnami/keycloak-metrics:1.0",  # metrics.enabled false in the chart's defaults
    "quay.io/thanos/thanos:v0.35.1",  # a subchart whose condition is false
}
EXTRAS: dict[str, dict[str, str]] = {
    "gpu-operator": {
        "templates/workloads.yaml": WORKLOADS,
        "templates/tests/test.yaml": CHART_TEST,
        "values.yaml": "replicas: 1\n"
                       "validator: {repository: nvcr.io/nvidia/cloud-native, image: gpu-operator-validator, version: v24.9.0}\n"
                       "driver: {enabled: true, repository: nvcr.io/nvidia, image: driver, version: '550.127.05'}\n",
    },
    "keycloak": {
        "values.yaml": "replicas: 1\n"
                       "keycloakConfigCli: {enabled: false, image: {registry: docker.io, repository: bitnami/keycloak-config-cli, tag: 6.1.6-debian-12-r0}}\n"
                       "metrics: {enabled: false, image: {registry: docker.io, repository: bitnami/keycloak-metrics, tag: '1.0'}}\n"
                       "sidecarImage: quay.io/standin/sidecar:2.0\n",
    },
    "kube-prometheus-stack": {
        "Chart.yaml": "apiVersion: v2\nname: kube-prometheus-stack\nversion: 61.9.0\ndescription: stand-in with subcharts\n"
                      "dependencies:\n"
                      "  - {name: grafana, version: 1.0.0, condition: grafana.enabled}\n"
                      "  - {name: thanos-ruler, version: 1.0.0, condition: thanosRuler.enabled}\n",
        "values.yaml": "replicas: 1\ngrafana: {enabled: false}\nthanosRuler: {enabled: false}\n",
        "charts/grafana/Chart.yaml": "apiVersion: v2\nname: grafana\nversion: 1.0.0\n",
        "charts/grafana/values.yaml": "image: {repository: grafana/grafana, tag: 11.1.0}\n",
        "charts/thanos-ruler/Chart.yaml": "apiVersion: v2\nname: thanos-ruler\nversion: 1.0.0\n",
        "charts/thanos-ruler/values.yaml": "image: {registry: quay.io, repository: thanos/thanos, tag: v0.35.1}\n",
    },
}


def synced_charts(scratch: Path) -> Path:
    """Stand-ins of every declared chart, served on 127.0.0.1 and synced into a charts folder (the repository stops after)."""
    declared = yaml.safe_load((ROOT / "charts" / "external.yaml").read_text())["charts"]
    repo, sources, charts = scratch / "repo", scratch / "src", scratch / "charts"
    repo.mkdir(parents=True)
    charts.mkdir()
    with serve(repo) as served:
        for chart in declared:
            package(write_standin(sources, chart["name"], chart["version"], EXTRAS.get(chart["name"])), repo)
            chart["repository"] = served.url
        index(repo, served.url)
        (charts / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        sync(charts, None, 60)
    return charts


def site_project(target: Path, registry: str = REGISTRY) -> Path:
    """A copy of what resolving a stack reads, plus a site stack that inherits stage and sets the offline registry."""
    target.mkdir(parents=True)
    for part in ("catalog", "values", "charts/own", "charts/patches", "commands", "model", "schemas", "Pulumi.stage.yaml", *_pins()):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    (target / ".tools").symlink_to(ROOT / ".tools")
    (target / "Pulumi.site.yaml").write_text(yaml.safe_dump({"config": {
        "astrago-deploy:inherits": "stage", "astrago-deploy:offline": {"registry": registry},
    }}))
    return target


def _pins() -> tuple[str, ...]:
    return ("toolchain/tools.toml", "requirements.txt", "constraints.txt")


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_charts(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return site_project(tmp_path_factory.mktemp("images-project") / "project")


@pytest.fixture(scope="module")
def stage_lock(charts: Path) -> ImagesLock:
    return collect("stage", ROOT, str(charts))


@pytest.fixture(scope="module")
def site_lock(project: Path, charts: Path) -> ImagesLock:
    return collect("site", project, str(charts))


def _by_image(lock: ImagesLock) -> dict[str, tuple[str, ...]]:
    return {record.image: record.releases for record in lock.images}


def test_the_product_charts_images_appear_with_their_release(stage_lock: ImagesLock) -> None:
    images = _by_image(stage_lock)
    tags = yaml.safe_load((ROOT / "Pulumi.stage.yaml").read_text())["config"]["astrago-deploy:releases"]["astrago"]["values"]
    for component in ("core", "batch", "monitor", "frontend"):
        image = f"docker.io/astrago/{component}:{tags[component]['image']['tag']}"
        assert images.get(image) == ("astrago",), f"{image} not listed for release astrago: {sorted(images)}"
    assert images.get("docker.io/library/mariadb:11.4") == ("astrago",)
    assert images.get("docker.io/astrago/gpu-process-exporter:1.0.0") == ("gpu-process-exporter",)
    assert stage_lock.registry is None and not stage_lock.warnings(), "without an offline registry there is nothing to warn about"


def test_every_workload_kind_hooks_and_values_images_are_listed(stage_lock: ImagesLock, charts: Path) -> None:
    records = {record.image: record for record in stage_lock.images}
    for image in RENDERED:
        assert image in records and records[image].releases == ("gpu-operator",) and records[image].found_in == ("manifests",), f"{image}: {records.get(image)}"
    assert records[HOOK].found_in == ("hooks",)
    for image, release in FROM_VALUES.items():
        assert image in records and records[image].releases == (release,) and records[image].found_in == ("values",), f"{image}: {records.get(image)}"
    assert not NOT_LISTED & set(records), f"listed what no install runs: {sorted(NOT_LISTED & set(records))}"
    externals = tuple(sorted(r.name for r in resolve_stack("stage", charts_dir=str(charts)).releases.values() if r.source != "local"))
    assert len(externals) == 8 and records[STANDIN_IMAGE].releases == externals, f"every external release runs the stand-in Deployment: {records[STANDIN_IMAGE]}"


def test_with_the_offline_registry_every_own_chart_image_points_at_it(project: Path, charts: Path, site_lock: ImagesLock) -> None:
    own = {r.name for r in resolve_stack("site", project, str(charts)).releases.values() if r.source == "local"}
    mine = [record for record in site_lock.images if set(record.releases) & own]
    assert {r for record in mine for r in record.releases} >= {"astrago", "gpu-process-exporter"}, [m.image for m in mine]
    off = [f"{record.image} ({', '.join(record.releases)})" for record in mine if not record.site]
    assert not off, f"images of our own charts that ignore {REGISTRY}: {off}"
    core = next(record for record in mine if "/astrago/core:" in record.image)
    assert core.image.startswith(f"{REGISTRY}/astrago/core:core-stage-") and core.source == core.image.replace(REGISTRY, "docker.io"), core


def test_external_images_are_flagged_not_mirrored_with_where_they_must_go(site_lock: ImagesLock) -> None:
    records = {record.image: record for record in site_lock.images}
    standin = records[STANDIN_IMAGE]
    assert not standin.site and standin.mirror_as == f"{REGISTRY}/standin:1.0" and standin.rewritten, standin
    for image in [*RENDERED, HOOK, *FROM_VALUES]:
        assert not records[image].site and records[image].mirror_as, records[image]
    assert records["grafana/grafana:11.1.0"].mirror_as == f"{REGISTRY}/grafana/grafana:11.1.0"
    warnings = site_lock.warnings()
    for image in [STANDIN_IMAGE, HOOK, *FROM_VALUES]:
        assert any(line.startswith(f"warning: {image} (") for line in warnings), f"no warning for {image}: {warnings}"
    assert any(HOOK in line and "Helm hook" in line for line in warnings)
    assert len(warnings) == len(site_lock.off_site())


def test_the_command_writes_a_sorted_lock_and_prints_one_warning_per_unmirrored_image(project: Path, charts: Path, tmp_path: Path) -> None:
    out = tmp_path / "site.lock.yaml"
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "commands.images", "--stack", "site", "--charts-dir", str(charts), "--out", str(out)],
                            cwd=project, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr
    lock = yaml.safe_load(out.read_text())
    assert lock["stack"] == "site" and lock["registry"] == REGISTRY
    images = [entry["image"] for entry in lock["images"]]
    assert images == sorted(set(images)), "sorted, each image once"
    assert all(entry["releases"] == sorted(set(entry["releases"])) for entry in lock["images"])
    off_site = [entry["image"] for entry in lock["images"] if not entry["siteRegistry"]]
    warned = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert off_site and len(warned) == len(off_site) and all(any(line.startswith(f"warning: {i} (") for line in warned) for i in off_site), result.stdout
    assert MASK not in out.read_text() and "Zq8" not in out.read_text()
    assert not lock_path(project, "site").exists(), "--out is where the lock goes"


def test_the_same_inputs_give_the_same_lock(project: Path, charts: Path, site_lock: ImagesLock) -> None:
    assert collect("site", project, str(charts), workers=1).to_yaml() == site_lock.to_yaml()


def test_a_release_that_does_not_render_is_named_with_helms_reason(project: Path, charts: Path) -> None:
    (project / "Pulumi.bad.yaml").write_text(yaml.safe_dump({"config": {
        "astrago-deploy:inherits": "stage",
        "astrago-deploy:releases": {"astrago": {"values": {"proxy": {"service": {"nodePort": 80}}}}},
    }}))
    with pytest.raises(InputError) as refused:
        collect("bad", project, str(charts))
    assert "release 'astrago'" in str(refused.value) and "nodePort" in str(refused.value), str(refused.value)


@pytest.fixture(autouse=True)
def _no_lock_in_the_checkout() -> Iterator[None]:
    """The tests never write images/ into the checkout."""
    before = sorted((ROOT / "images").glob("*")) if (ROOT / "images").is_dir() else []
    yield
    after = sorted((ROOT / "images").glob("*")) if (ROOT / "images").is_dir() else []
    assert after == before
