"""The images lock of a stack, read from what the real helm renders from charts synced from a real repository on 127.0.0.1.

Stand-ins of the external charts carry every workload kind, a Helm hook, a
chart test, and images passed as data the way upstream charts pass them:
prometheus-operator's `--prometheus-config-reloader=<image>` argument, a
Prometheus custom resource's `image`, gpu-operator's ClusterPolicy triples
(the validator's version left to the operator, declared in
catalog/runtime-images.yaml), bitnami's {registry, repository, tag} in a
hook Job, an env value, a Chart.yaml `artifacthub.io/images` annotation, a
subchart enabled by its condition (its defaults coalesced by Helm) and one
disabled by it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cli.helm import template
from commands.charts import sync
from model.deployment import resolve_stack
from model.errors import InputError
from model.images import canonical, image_fields, load_runtime_declarations, object_text
from model.images_lock import ImagesLock, LockedImage, load_images_lock, lock_path, write_images_lock
from model.manifest import parse_manifest
from model.values import MASK
from offline.image_list import collect, release_image_uses
from postrender.stream import post_render
from render.releases import Cluster, offline_kube_version, render_releases
from tests.support.chart_repo import index, package, serve, write_standin
from tests.support.standin_charts import build_realistic_charts_dir, realistic_images

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "registry.site.local:5000"
STANDIN_IMAGE = "registry.invalid/standin:1.0"
DIGEST = "sha256:" + "d" * 64

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
# gpu-operator's ClusterPolicy: operands as {repository, image, version}; the chart writes the validator's version only when set.
CLUSTER_POLICY = """apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata: {name: cluster-policy}
spec:
  operator: {defaultRuntime: containerd}
  driver: {enabled: {{ .Values.driver.enabled }}, repository: {{ .Values.driver.repository }}, image: {{ .Values.driver.image }}, version: {{ .Values.driver.version | quote }}}
  toolkit: {enabled: {{ .Values.toolkit.enabled }}, repository: nvcr.io/nvidia/k8s, image: container-toolkit, version: v1.17.0-ubuntu20.04}
  dcgmExporter: {repository: nvcr.io/nvidia/k8s, image: dcgm-exporter, version: 3.3.9-3.6.0-ubuntu22.04}
  validator:
    repository: {{ .Values.validator.repository }}
    image: {{ .Values.validator.image }}
    {{- with .Values.validator.version }}
    version: {{ . }}
    {{- end }}
"""
OPERATOR = """apiVersion: apps/v1
kind: Deployment
metadata: {name: prometheus-operator}
spec:
  selector: {matchLabels: {app: operator}}
  template:
    metadata: {labels: {app: operator}}
    spec:
      containers:
        - name: operator
          image: "{{ .Values.operator.image }}"
          args:
            - --kubelet-service=kube-system/kubelet
            - --prometheus-config-reloader={{ .Values.operator.reloader.registry }}/{{ .Values.operator.reloader.repository }}:{{ .Values.operator.reloader.tag }}
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: prometheus}
spec:
  image: quay.io/prometheus/prometheus:v2.54.1
  retention: {{ .Values.prometheus.prometheusSpec.retention }}
"""
SUBCHART = """apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Chart.Name }}}
spec:
  selector: {matchLabels: {app: {{ .Chart.Name }}}}
  template:
    metadata: {labels: {app: {{ .Chart.Name }}}}
    spec:
      containers: [{name: main, image: "{{ with .Values.image.registry }}{{ . }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag }}"}]
"""
CONFIG_CLI = """{{- if .Values.keycloakConfigCli.enabled }}
apiVersion: batch/v1
kind: Job
metadata: {name: keycloak-config-cli, annotations: {helm.sh/hook: post-install}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: cli
          image: {{ printf "%s/%s:%s" .Values.keycloakConfigCli.image.registry .Values.keycloakConfigCli.image.repository .Values.keycloakConfigCli.image.tag }}
          env: [{name: SIDECAR_IMAGE, value: "bitnami/os-shell:12-debian-12-r30"}]
{{- end }}
"""
# What the stand-ins start (by release), and what they must not list.
RENDERED = {
    "standin.example/pod-init:1", "standin.example/pod-main:1", "standin.example/pod-debug:1", "standin.example/statefulset:1",
    "standin.example/daemonset:1", "standin.example/replicaset:1", "standin.example/job:1", "standin.example/cronjob-init:1",
    "standin.example/cronjob:1",
}
HOOK = "standin.example/hook:1"
AS_DATA = {
    "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0": "gpu-operator",  # declared: the operator fills the version in
    "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.0-ubuntu22.04": "gpu-operator",
    "quay.io/prometheus-operator/prometheus-operator:v0.75.2": "prometheus",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2": "prometheus",  # a container argument
    "quay.io/prometheus/prometheus:v2.54.1": "prometheus",  # a custom resource field
    "quay.io/prometheus-operator/admission-webhook:v0.75.2": "prometheus",  # Chart.yaml's artifacthub.io/images only
    "docker.io/grafana/grafana:11.1.0": "prometheus",  # an enabled subchart's defaults
    "docker.io/bitnami/keycloak-config-cli:6.1.6-debian-12-r0": "keycloak",  # a post-install hook
    "docker.io/bitnami/os-shell:12-debian-12-r30": "keycloak",  # an env value
}
NOT_LISTED = {
    "nvcr.io/nvidia/driver:550.127.05",  # the operator pulls the driver by its OS-suffixed tag only
    "nvcr.io/nvidia/k8s/container-toolkit:v1.17.0-ubuntu20.04",  # the stand-in's default toolkit.enabled false: the ClusterPolicy says so
    "quay.io/thanos/thanos:v0.35.1",  # a subchart whose condition is false
}
EXTRAS: dict[str, dict[str, str]] = {
    "gpu-operator": {
        "Chart.yaml": "apiVersion: v2\nname: gpu-operator\nversion: v24.9.0\nappVersion: v24.9.0\ndescription: stand-in\n",
        "templates/workloads.yaml": WORKLOADS,
        "templates/tests/test.yaml": CHART_TEST,
        "templates/clusterpolicy.yaml": CLUSTER_POLICY,
        "values.yaml": "replicas: 1\n"
                       "validator: {repository: nvcr.io/nvidia/cloud-native, image: gpu-operator-validator}\n"
                       "driver: {enabled: true, repository: nvcr.io/nvidia, image: driver, version: '550.127.05'}\n"
                       "toolkit: {enabled: false}\n",
    },
    "keycloak": {
        "templates/config-cli.yaml": CONFIG_CLI,
        "values.yaml": "replicas: 1\n"
                       "keycloakConfigCli: {enabled: true, image: {registry: docker.io, repository: bitnami/keycloak-config-cli, tag: 6.1.6-debian-12-r0}}\n"
                       "metrics: {enabled: false, image: {registry: docker.io, repository: bitnami/keycloak-metrics, tag: '1.0'}}\n",
    },
    "kube-prometheus-stack": {
        "Chart.yaml": "apiVersion: v2\nname: kube-prometheus-stack\nversion: 61.9.0\ndescription: stand-in with subcharts\n"
                      "annotations:\n  artifacthub.io/images: |\n"
                      "    - {name: prometheus-operator, image: 'quay.io/prometheus-operator/prometheus-operator:v0.75.2'}\n"
                      "    - {name: admission-webhook, image: 'quay.io/prometheus-operator/admission-webhook:v0.75.2'}\n"
                      "dependencies:\n"
                      "  - {name: grafana, version: 1.0.0, condition: grafana.enabled}\n"
                      "  - {name: thanos-ruler, version: 1.0.0, condition: thanosRuler.enabled}\n",
        "templates/operator.yaml": OPERATOR,
        "values.yaml": "replicas: 1\ngrafana: {enabled: false}\nthanosRuler: {enabled: false}\n"
                       "prometheus: {prometheusSpec: {retention: 10d}}\n"
                       "operator: {image: 'quay.io/prometheus-operator/prometheus-operator:v0.75.2',\n"
                       "  reloader: {registry: quay.io, repository: prometheus-operator/prometheus-config-reloader, tag: v0.75.2}}\n",
        "charts/grafana/Chart.yaml": "apiVersion: v2\nname: grafana\nversion: 1.0.0\n",
        "charts/grafana/values.yaml": "image: {repository: grafana/grafana, tag: 11.1.0}\n",
        "charts/grafana/templates/deployment.yaml": SUBCHART,
        "charts/thanos-ruler/Chart.yaml": "apiVersion: v2\nname: thanos-ruler\nversion: 1.0.0\n",
        "charts/thanos-ruler/values.yaml": "image: {registry: quay.io, repository: thanos/thanos, tag: v0.35.1}\n",
        "charts/thanos-ruler/templates/deployment.yaml": SUBCHART,
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
    for part in ("catalog", "values", "charts/own", "charts/patches", "cli", "commands", "model", "offline", "postrender", "render", "schemas", "Pulumi.stage.yaml", *_pins()):
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
    return {record.reference: record.releases for record in lock.images}


def test_the_product_charts_images_appear_with_their_release(stage_lock: ImagesLock) -> None:
    images = _by_image(stage_lock)
    tags = yaml.safe_load((ROOT / "Pulumi.stage.yaml").read_text())["config"]["astrago-deploy:releases"]["astrago"]["values"]
    for component in ("core", "batch", "monitor", "frontend"):
        image = f"docker.io/astrago/{component}:{tags[component]['image']['tag']}"
        assert images.get(image) == ("astrago",), f"{image} not listed for release astrago: {sorted(images)}"
    assert images.get("docker.io/library/mariadb:11.4") == ("astrago",)
    assert images.get("docker.io/astrago/gpu-process-exporter:1.0.0") == ("gpu-process-exporter",)
    assert stage_lock.registry is None and not stage_lock.warnings(), "without an offline registry there is nothing to warn about"


def test_every_workload_kind_hooks_and_images_passed_as_data_are_listed(stage_lock: ImagesLock, charts: Path) -> None:
    records = {record.reference: record for record in stage_lock.images}
    for image in RENDERED:
        record = records.get(image)
        assert record and record.releases == ("gpu-operator",) and not record.in_hooks, f"{image}: {record}"
    hook = records[HOOK]
    assert hook.in_hooks and hook.found_in == ("gpu-operator: Job standin-hook spec.template.spec.containers[0].image",), hook
    for image, release in AS_DATA.items():
        assert image in records and records[image].releases == (release,), f"{image}: {records.get(image)} (listed: {sorted(records)})"
    assert records["docker.io/bitnami/keycloak-config-cli:6.1.6-debian-12-r0"].in_hooks
    # A chart test: `helm test` starts it at the site, outside the post-render.
    assert records["standin.example/test-only:1"].in_hooks and records["standin.example/test-only:1"].found_in == (
        "gpu-operator: Pod standin-test spec.containers[0].image",)
    reloader = records["quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2"]
    assert reloader.found_in == ("prometheus: Deployment prometheus-operator spec.template.spec.containers[0].args[1]",), reloader
    validator = records["nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0"]
    assert "gpu-operator: ClusterPolicy cluster-policy spec.validator" in validator.found_in, validator
    assert not NOT_LISTED & set(records), f"listed what no install runs: {sorted(NOT_LISTED & set(records))}"
    externals = tuple(sorted(r.name for r in resolve_stack("stage", ROOT, charts_dir=str(charts)).releases.values() if r.source != "local"))
    assert len(externals) == 8 and records[STANDIN_IMAGE].releases == externals, f"every external release runs the stand-in Deployment: {records[STANDIN_IMAGE]}"


def test_an_image_whose_tag_nothing_gives_fails_naming_the_chart_and_field(project: Path, charts: Path) -> None:
    declarations = project / "catalog" / "runtime-images.yaml"
    kept = declarations.read_text()
    declarations.write_text("charts: {}\n")
    try:
        with pytest.raises(InputError) as refused:
            collect("stage", project, str(charts))
    finally:
        declarations.write_text(kept)
    assert ("release 'gpu-operator': chart 'gpu-operator': ClusterPolicy cluster-policy spec.validator names image "
            "nvcr.io/nvidia/cloud-native/gpu-operator-validator (version is not given)") in str(refused.value), str(refused.value)


def test_with_the_offline_registry_the_lock_holds_the_source_references(project: Path, charts: Path, site_lock: ImagesLock, stage_lock: ImagesLock) -> None:
    """The charts are rendered without the registry: the lock names what the bundle fetches; the post-render moves and pins it."""
    assert site_lock.registry == REGISTRY
    assert [i.reference for i in site_lock.images] == [i.reference for i in stage_lock.images]
    assert not any(i.reference.startswith(REGISTRY) for i in site_lock.images)
    core = next(i for i in site_lock.images if "/astrago/core:" in i.reference)
    assert site_lock.site_reference(core) == core.reference.replace("docker.io", REGISTRY)
    warnings = site_lock.warnings()
    hooks = [i.reference for i in site_lock.images if i.in_hooks]
    assert hooks and all(any(line.startswith(f"warning: {h} (") and "Helm hooks" in line for line in warnings) for h in hooks), warnings
    assert warnings[-1].startswith(f"warning: {len(site_lock.images)} image(s) have no digest yet")


def test_the_command_writes_a_sorted_lock_and_keeps_recorded_digests(project: Path, charts: Path, tmp_path: Path) -> None:
    out = tmp_path / "site.lock.yaml"
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "commands.images", "--stack", "site", "--charts-dir", str(charts), "--out", str(out)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    lock = load_images_lock(out)
    assert lock.stack == "site" and lock.registry == REGISTRY
    references = [i.reference for i in lock.images]
    assert references == sorted(set(references)), "sorted, each image once"
    assert all(list(i.releases) == sorted(set(i.releases)) for i in lock.images)
    assert MASK not in out.read_text() and "Zq8" not in out.read_text()
    assert not lock_path(project, "site").exists(), "--out is where the lock goes"
    # `make bundle` records digests; running `make images` again keeps them.
    fetched = lock.with_fetched(STANDIN_IMAGE, digest=DIGEST, size=1234, platforms=("linux/amd64",))
    write_images_lock(fetched, out)
    again = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    kept = load_images_lock(out).by_reference()[STANDIN_IMAGE]
    assert kept == LockedImage(STANDIN_IMAGE, kept.releases, kept.found_in, False, DIGEST, 1234, ("linux/amd64",)), kept
    assert "(1 with a digest)" in again.stdout, again.stdout


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


# --- the realistic stand-ins (tests/realistic_charts) ----------------------------------------------

@pytest.fixture(scope="module")
def realistic_charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_realistic_charts_dir(tmp_path_factory.mktemp("realistic"))


# Listed though the chart's defaults do not start them: the ClusterPolicy enables these operands, and only the operator
# knows that spec.sandboxWorkloads.enabled (false) gates them. Listing more is safe (the bundle carries them); less is not.
# keycloak's Chart.yaml `images` annotation (bitnami's) names the config CLI, whose hook Job the defaults switch off.
# The kata manager's artifact images (its config inside the ClusterPolicy) are gated the same way.
OVER_LISTED = {"gpu-operator": {"nvcr.io/nvidia/cloud-native/vgpu-device-manager:v0.2.8", "nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.2.10",
                                "nvcr.io/nvidia/cloud-native/kata-gpu-artifacts:ubuntu22.04-535.54.03",
                                "nvcr.io/nvidia/cloud-native/kata-gpu-artifacts:ubuntu22.04-535.86.10-snp"},
               "keycloak": {"docker.io/bitnami/keycloak-config-cli:5.9.0-debian-11-r1"}}


def test_on_the_realistic_set_every_image_the_stand_ins_start_is_listed(realistic_charts: Path) -> None:
    """Each realistic chart rendered with its defaults, as `make images` reads a release: exactly the images its `.images` file says it starts."""
    deployment = resolve_stack("stage", ROOT, charts_dir=str(realistic_charts))
    declarations = load_runtime_declarations(ROOT)
    expected = realistic_images()
    seen = set()
    for release in deployment.releases.values():
        if release.source == "local":
            continue
        seen.add(release.chart_name)
        listed = {use.reference for use in release_image_uses(release, {}, ROOT, declarations, 120)}
        wanted = {canonical(ref) for ref in expected[release.chart_name]}
        assert not wanted - listed, f"{release.chart_name}: missing {sorted(wanted - listed)}"
        assert listed - wanted == OVER_LISTED.get(release.chart_name, set()), f"{release.chart_name}: listed beyond what it starts: {sorted(listed - wanted)}"
    assert seen == set(expected), "every realistic chart is a release of stage"


def test_make_images_on_the_realistic_set_with_stage_values(realistic_charts: Path) -> None:
    """The stage stack over the realistic charts: the images its values start, with where each is named."""
    lock = collect("stage", ROOT, str(realistic_charts))
    records = lock.by_reference()
    reloader = records["quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2"]
    assert reloader.releases == ("prometheus",) and any("args" in w for w in reloader.found_in), reloader
    validator = records["nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.0"]
    assert "gpu-operator: ClusterPolicy cluster-policy spec.validator" in validator.found_in, validator
    # values/gpu-operator.yaml (the team's): the operator manages the driver, so its image is listed with the
    # OS-suffixed tag the operator pulls, and only that one.
    drivers = [r for r in records if r.startswith("nvcr.io/nvidia/driver:")]
    assert drivers == ["nvcr.io/nvidia/driver:550.127.05-ubuntu22.04"], sorted(records)
    # The team's values leave keycloak's config CLI hook off; Chart.yaml's images annotation still names it (listing more is safe).
    cli = records["docker.io/bitnami/keycloak-config-cli:5.9.0-debian-11-r1"]
    assert cli.releases == ("keycloak",) and not any("Job" in w for w in cli.found_in), cli


def test_with_the_offline_registry_every_realistic_image_is_moved_and_pinned(project: Path, realistic_charts: Path) -> None:
    """The site stack over the realistic charts: the preview's post-render check passes once every image has a digest, and the
    manifests Helm installs name each image at the site registry by the lock's digest (hooks excepted: Helm keeps them)."""
    lock = collect("site", project, str(realistic_charts))
    for image in lock.images:
        lock = lock.with_fetched(image.reference, digest="sha256:" + hashlib.sha256(image.reference.encode()).hexdigest(), size=1)
    write_images_lock(lock, lock_path(project, "site"))
    try:
        deployment = resolve_stack("site", project, str(realistic_charts))
        assert all(r.postrender and r.postrender.registry == REGISTRY for r in deployment.releases.values())
        # The preview's render (helm template, no cluster) runs every release's post-render: every image is in the lock.
        render_releases(project, deployment, {}, Cluster(facts=None, offline_version=offline_kube_version(project)))
        digests = {str(i.digest) for i in lock.images}
        for name in ("prometheus", "gpu-operator", "keycloak", "harbor"):
            release = deployment.releases[name]
            assert release.postrender is not None
            rendered = template(name, release.chart_path, release.namespace, yaml.safe_dump(deployment.masked_values(name)), 120, cwd=project)
            out = post_render(rendered, project, None, REGISTRY, release.postrender.lock, name)
            fields = [(obj, f) for obj in parse_manifest(out).values() for f in image_fields(obj)
                      if f.path[:2] != ("metadata", "annotations") and f.form != "triple"]
            assert fields, name
            wrong = [f"{object_text(obj)} {f.path_text()}: {f.text}" for obj, f in fields
                     if not (f.reference and f.reference.domain == REGISTRY.split("/")[0] and f.reference.digest in digests)]
            assert not wrong, f"{name}: not at {REGISTRY} by the lock's digest: {wrong}"
        triples = [f for obj in parse_manifest(post_render(
            template("gpu-operator", deployment.releases["gpu-operator"].chart_path, "gpu-operator",
                     yaml.safe_dump(deployment.masked_values("gpu-operator")), 120, cwd=project),
            project, None, REGISTRY, f"images/{lock.stack}.lock.yaml", "gpu-operator")).values() for f in image_fields(obj) if f.form == "triple"]
        assert triples and all(f.reference and f.reference.digest in digests for f in triples), [f.text for f in triples]
    finally:
        lock_path(project, "site").unlink()
