"""A real Helm chart repository on 127.0.0.1, built from stand-in charts written here.

Stand-ins take the names and versions of the declared external charts and
deploy one small Deployment and a ConfigMap, so installs really wait for
readiness; their containers use the images the real charts run (the upstream
registries and names of platform.md, STANDIN_IMAGES). `helm package` and
`helm repo index` build the repository, and a threaded HTTP server serves it
(optionally behind basic auth, optionally misbehaving on chosen paths as a
broken repository does: 500, slow, trickle, truncated, redirect loop, huge).
`push_oci` publishes the same stand-ins to an OCI registry with `helm push`.
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".tools" / "bin" / "helm"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas | default 1 }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      {{- with .Values.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        {{- range $i, $image := .Values.standinImages }}
        - name: c{{ $i }}
          image: {{ $image }}
        {{- else }}
        - name: main
          image: {{ if kindIs "string" .Values.image }}{{ .Values.image }}{{ else }}registry.invalid/standin:1.0{{ end }}
        {{- end }}
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-values
data:
  chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
  values: {{ toJson .Values | quote }}
"""


def require_helm() -> Path:
    if not HELM.exists():
        raise AssertionError(f"{HELM} is missing: run `make setup` (the chart repository tests need the helm CLI)")
    return HELM


# What the real charts run (platform.md: the team's settings; the charts' defaults otherwise).
STANDIN_IMAGES: dict[str, tuple[str, ...]] = {
    "csi-driver-nfs": ("registry.k8s.io/sig-storage/nfsplugin:v4.7.0", "registry.k8s.io/sig-storage/csi-provisioner:v4.0.0",
                       "registry.k8s.io/sig-storage/livenessprobe:v2.12.0"),
    "gpu-operator": ("nvcr.io/nvidia/gpu-operator:v24.9.0",),
    "kube-prometheus-stack": ("quay.io/prometheus/prometheus:v2.54.0", "quay.io/prometheus-operator/prometheus-operator:v0.76.0"),
    "loki-stack": ("docker.io/grafana/loki:2.9.3", "docker.io/grafana/promtail:2.9.3"),
    "flux2": ("ghcr.io/fluxcd/source-controller:v1.3.0", "ghcr.io/fluxcd/helm-controller:v1.0.1"),
    "keycloak": ("docker.io/bitnami/keycloak:24.0.5-debian-12-r0",),
    "harbor": ("docker.io/goharbor/harbor-core:v2.11.1", "docker.io/goharbor/harbor-portal:v2.11.1", "docker.io/goharbor/registry-photon:v2.11.1"),
    "mpi-operator": ("docker.io/mpioperator/mpi-operator:0.5.0",),
}


def write_standin(folder: Path, name: str, version: str, extra: dict[str, str] | None = None, images: tuple[str, ...] = ()) -> Path:
    """A stand-in chart directory (source, not packaged); images: its containers' images (default: one registry.invalid/standin:1.0)."""
    chart = folder / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\ndescription: stand-in of {name} for tests\n")
    listed = "".join(f"  - {image}\n" for image in images)
    (chart / "values.yaml").write_text(f"replicas: 1\nstandinImages:\n{listed}" if images else "replicas: 1\n")
    # The stand-in reads every value (its ConfigMap holds them all), so its schema says it takes any key:
    # the key check (model/valuekeys.py) then passes the values written for the real chart.
    (chart / "values.schema.json").write_text('{"type": "object", "additionalProperties": true, "properties": {"replicas": {"type": "integer"}}}\n')
    (chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (chart / "templates" / "configmap.yaml").write_text(CONFIGMAP)
    for path, text in (extra or {}).items():
        (chart / path).parent.mkdir(parents=True, exist_ok=True)
        (chart / path).write_text(text)
    return chart


def package(chart: Path, into: Path) -> Path:
    """`helm package` a chart directory; return the archive."""
    into.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([str(require_helm()), "package", str(chart), "-d", str(into)], capture_output=True, text=True, timeout=60, check=True)
    return Path(out.stdout.strip().rsplit(" ", 1)[-1])


def index(repo: Path, url: str) -> None:
    subprocess.run([str(require_helm()), "repo", "index", str(repo), "--url", url], capture_output=True, text=True, timeout=60, check=True)


@dataclass
class ChartRepo:
    """A served repository: its folder and URL."""

    folder: Path
    url: str
    port: int


class _Handler(SimpleHTTPRequestHandler):
    credentials: str | None = None
    # URL path -> how to misbehave there (see Misbehaviour); shared with the test that sets it.
    misbehave: dict[str, str] = {}  # noqa: RUF012 - replaced per server by serve()

    def do_GET(self) -> None:
        if self.credentials and self.headers.get("Authorization") != f"Basic {self.credentials}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.end_headers()
            return
        mode = self.misbehave.get(self.path.split("?", 1)[0])
        if mode:
            self._misbehave(mode)
            return
        super().do_GET()

    def _misbehave(self, mode: str) -> None:
        """500; slow (answers after 60 s); trickle (a byte every 2 s); truncated (half the promised bytes); redirect (to itself); huge (80 MiB)."""
        if mode == "500":
            self.send_error(500, "Internal Server Error")
        elif mode == "redirect":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
        elif mode == "slow":
            time.sleep(60)
            self.send_error(500, "too late")
        elif mode in ("trickle", "truncated", "huge"):
            data = Path(self.directory, self.path.lstrip("/")).read_bytes() if mode == "truncated" else b""
            size = {"trickle": 1 << 20, "truncated": len(data), "huge": 80 << 20}[mode]
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                if mode == "trickle":
                    for _ in range(60):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(2)
                elif mode == "truncated":
                    self.wfile.write(data[: len(data) // 2])
                else:
                    block = b"\0" * (1 << 20)
                    for _ in range(80):
                        self.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return


@contextmanager
def serve(folder: Path, username: str | None = None, password: str | None = None,
          misbehave: dict[str, str] | None = None) -> Iterator[ChartRepo]:
    """Serve folder on 127.0.0.1 (a free port) until the block ends; misbehave: URL path -> mode, changeable while serving."""
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode() if username else None
    modes = misbehave if misbehave is not None else {}
    handler = functools.partial(type("Handler", (_Handler,), {"credentials": credentials, "misbehave": modes}), directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield ChartRepo(folder=folder, url=f"http://127.0.0.1:{port}", port=port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def build_repo(folder: Path, charts: list[tuple[str, str]], url: str, realistic_images: bool = False) -> None:
    """Package stand-ins for (name, version) pairs into folder and index them for url (realistic_images: STANDIN_IMAGES)."""
    sources = folder.parent / f"{folder.name}-src"
    for name, version in charts:
        package(write_standin(sources, name, version, images=STANDIN_IMAGES.get(name, ()) if realistic_images else ()), folder)
    shutil.rmtree(sources)
    index(folder, url)


def push_oci(charts: list[tuple[str, str]], registry_host: str, project: str, scratch: Path, realistic_images: bool = False) -> str:
    """Package stand-ins and `helm push` them to oci://registry_host/project over plain HTTP; return that repository."""
    repository = f"oci://{registry_host}/{project}"
    sources, archives = scratch / "oci-src", scratch / "oci-packages"
    for name, version in charts:
        archive = package(write_standin(sources, name, version, images=STANDIN_IMAGES.get(name, ()) if realistic_images else ()), archives)
        subprocess.run([str(require_helm()), "push", str(archive), repository, "--plain-http"], capture_output=True, text=True, timeout=60, check=True)
    shutil.rmtree(sources)
    return repository


def build_realistic_repo(folder: Path, names: list[str], url: str) -> None:
    """The realistic stand-ins (tests/realistic_charts) of the named charts, packaged into folder and indexed for url."""
    from tests.support.standin_charts import realistic_chart_archive, realistic_chart_version

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}-{realistic_chart_version(name)}.tgz").write_bytes(realistic_chart_archive(name))
    index(folder, url)


def push_realistic_oci(names: list[str], registry_host: str, project: str, scratch: Path) -> str:
    """The realistic stand-ins of the named charts, `helm push`ed to oci://registry_host/project (plain HTTP); return that repository."""
    from tests.support.standin_charts import realistic_chart_archive, realistic_chart_version

    repository = f"oci://{registry_host}/{project}"
    scratch.mkdir(parents=True, exist_ok=True)
    for name in names:
        archive = scratch / f"{name}-{realistic_chart_version(name)}.tgz"
        archive.write_bytes(realistic_chart_archive(name))
        subprocess.run([str(require_helm()), "push", str(archive), repository, "--plain-http"], capture_output=True, text=True, timeout=60, check=True)
    return repository
