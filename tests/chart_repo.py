"""A real Helm chart repository on 127.0.0.1, built from stand-in charts written here.

Stand-ins take the names and versions of the declared external charts and
deploy one small Deployment and a ConfigMap, so installs really wait for
readiness. `helm package` and `helm repo index` build the repository, and a
threaded HTTP server serves it (optionally behind basic auth).
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
        - name: main
          image: {{ .Values.image | default "registry.invalid/standin:1.0" }}
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


def write_standin(folder: Path, name: str, version: str, extra: dict[str, str] | None = None) -> Path:
    """A stand-in chart directory (source, not packaged)."""
    chart = folder / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\ndescription: stand-in of {name} for tests\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
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

    def do_GET(self) -> None:
        if self.credentials and self.headers.get("Authorization") != f"Basic {self.credentials}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return


@contextmanager
def serve(folder: Path, username: str | None = None, password: str | None = None) -> Iterator[ChartRepo]:
    """Serve folder on 127.0.0.1 (a free port) until the block ends."""
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode() if username else None
    handler = functools.partial(type("Handler", (_Handler,), {"credentials": credentials}), directory=str(folder))
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


def build_repo(folder: Path, charts: list[tuple[str, str]], url: str) -> None:
    """Package stand-ins for (name, version) pairs into folder and index them for url."""
    sources = folder.parent / f"{folder.name}-src"
    for name, version in charts:
        package(write_standin(sources, name, version), folder)
    shutil.rmtree(sources)
    index(folder, url)
