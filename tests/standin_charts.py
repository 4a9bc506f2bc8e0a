"""Stand-in archives for the external charts, written here for tests.

The real third-party charts are never in this repository. Tests that need
the external releases resolve them from a charts folder built by this module:
the declared list (copied from charts/external.yaml or given), one small chart
archive per declared chart, and a lock with their checksums.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import yaml

from model.charts import DECLARED_FILE, LOCK_FILE, archive_name, load_declared, sha256_file

ROOT = Path(__file__).resolve().parent.parent

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-standin
data:
  chart: {{ .Chart.Name }}-{{ .Chart.Version }}
  values: {{ toJson .Values | quote }}
"""


def chart_archive(name: str, version: str, extra_templates: dict[str, str] | None = None) -> bytes:
    """A minimal chart packaged as Helm does (a gzip tar with <name>/ at the top)."""
    files = {
        "Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: {version.lstrip('v')}\ndescription: stand-in for tests\n",
        "values.yaml": "{}\n",
        "templates/configmap.yaml": CONFIGMAP,
        **(extra_templates or {}),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mtime = 0  # same bytes every run, so checksums are stable
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_charts_dir(target: Path, declared_from: Path = ROOT / "charts") -> Path:
    """Write external.yaml, the archives and versions.lock into target."""
    (target / "external").mkdir(parents=True, exist_ok=True)
    (target / DECLARED_FILE).write_text((declared_from / DECLARED_FILE).read_text())
    entries = []
    for chart in load_declared(target).values():
        relative = archive_name(chart.name, chart.version)
        (target / relative).write_bytes(chart_archive(chart.name, chart.version))
        digest = sha256_file(target / relative)
        entries.append({
            "name": chart.name, "version": chart.version, "source": chart.repository, "archive": relative,
            "sha256": digest, "repositoryDigest": digest, "fetched": "1970-01-01T00:00:00Z",
        })
    (target / LOCK_FILE).write_text(yaml.safe_dump({"charts": entries}, sort_keys=False))
    return target
