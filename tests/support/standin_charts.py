"""Stand-in archives for the external charts, written here for tests.

The real third-party charts are never in this repository. Tests that need
the external releases resolve them from a charts folder built by this module:
the declared list (copied from charts/external.yaml or given), one chart
archive per declared chart, and a lock with their checksums.

Two sets, one API
-----------------
``build_charts_dir(target)``
    Simple and fast: one ConfigMap per chart. For tests that only need a
    chart to exist (lock, verification, values layering).
``build_realistic_charts_dir(target)``
    The realistic stand-ins of ``tests/realistic_charts/<chart>/``: written
    here (never copied), with the upstream chart's name, version, value paths
    and defaults, and the features of it that break tools: objects in other
    namespaces and cluster-scoped ones, CRDs in ``crds/`` (also in
    subcharts) and custom resources of them, ``.Capabilities`` checks at
    group/version and group/version/Kind level and on the Kubernetes version,
    ``lookup`` plus ``randAlphaNum``/``genCA``/``genSignedCert`` secrets with
    ``checksum/*`` pod annotations, bitnami's upgrade password check, images
    in container args, env, ConfigMaps and custom resources, PVCs and
    volumeClaimTemplates, hook Jobs, admission webhooks, subcharts with
    globals, ``values.schema.json`` where upstream has one.
    ``tests/realistic_charts/README.md`` lists what each chart reproduces.
``realistic_images()``
    Chart name -> every image the realistic chart starts (or makes the
    cluster pull at run time) with its default values, from
    ``tests/realistic_charts/<chart>.images`` (one reference per line, ``#``
    comments), kept next to the templates that name them.
``realistic_chart_archive(name)``
    One realistic chart packaged as Helm packages it.

Archives are reproducible: ``<name>/...`` entries in sorted order
(``Chart.yaml`` first, as ``helm package`` writes it), mode 0644, mtime 0,
uid/gid 0, gzip header mtime 0: the same sources always give the same
sha256. The lock is written exactly as ``make charts-sync`` writes it.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import yaml

from model.charts import DECLARED_FILE, LOCK_FILE, archive_name, load_declared, sha256_file

ROOT = Path(__file__).resolve().parents[2]
REALISTIC_CHARTS = ROOT / "tests" / "realistic_charts"
IMAGES_SUFFIX = ".images"

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-standin
data:
  chart: {{ .Chart.Name }}-{{ .Chart.Version }}
  values: {{ toJson .Values | quote }}
"""


def _package(name: str, files: dict[str, bytes]) -> bytes:
    """A gzip tar with <name>/ at the top, byte-identical for the same files."""
    order = sorted(files, key=lambda p: (p != "Chart.yaml", p))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in order:
            data = files[path]
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0  # same bytes every run, so checksums are stable
            archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def chart_archive(name: str, version: str, extra_templates: dict[str, str] | None = None) -> bytes:
    """A minimal chart packaged as Helm does (a gzip tar with <name>/ at the top)."""
    files = {
        "Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: {version.lstrip('v')}\ndescription: stand-in for tests\n",
        "values.yaml": "{}\n",
        "templates/configmap.yaml": CONFIGMAP,
        **(extra_templates or {}),
    }
    return _package(name, {path: text.encode() for path, text in files.items()})


def _source_files(chart_dir: Path) -> dict[str, bytes]:
    """Every file of a chart source directory, by its path inside the chart."""
    return {p.relative_to(chart_dir).as_posix(): p.read_bytes()
            for p in chart_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def realistic_chart_archive(name: str) -> bytes:
    """The realistic stand-in of chart `name`, packaged (see the module docstring)."""
    chart_dir = REALISTIC_CHARTS / name
    if not (chart_dir / "Chart.yaml").is_file():
        raise AssertionError(f"no realistic stand-in for chart {name!r} in {REALISTIC_CHARTS}; write one there")
    return _package(name, _source_files(chart_dir))


def realistic_chart_version(name: str) -> str:
    """The version in the realistic stand-in's Chart.yaml."""
    return str(yaml.safe_load((REALISTIC_CHARTS / name / "Chart.yaml").read_text())["version"])


def realistic_images() -> dict[str, set[str]]:
    """Chart name -> the images its realistic stand-in starts with default values."""
    images: dict[str, set[str]] = {}
    for listing in sorted(REALISTIC_CHARTS.glob(f"*{IMAGES_SUFFIX}")):
        refs = {line.split("#", 1)[0].strip() for line in listing.read_text().splitlines()}
        images[listing.name.removesuffix(IMAGES_SUFFIX)] = {r for r in refs if r}
    return images


def _write_dir(target: Path, declared_from: Path, archive_of: Callable[[str, str], bytes]) -> Path:
    (target / "external").mkdir(parents=True, exist_ok=True)
    (target / DECLARED_FILE).write_text((declared_from / DECLARED_FILE).read_text())
    entries = []
    for chart in load_declared(target).values():
        relative = archive_name(chart.name, chart.version)
        data = archive_of(chart.name, chart.version)
        (target / relative).write_bytes(data)
        digest = sha256_file(target / relative)
        entries.append({
            "name": chart.name, "version": chart.version, "source": chart.repository, "archive": relative,
            "sha256": digest, "repositoryDigest": digest, "fetched": "1970-01-01T00:00:00Z",
        })
    (target / LOCK_FILE).write_text(yaml.safe_dump({"charts": entries}, sort_keys=False))
    return target


def build_charts_dir(target: Path, declared_from: Path = ROOT / "charts") -> Path:
    """Write external.yaml, the simple archives and versions.lock into target."""
    return _write_dir(target, declared_from, chart_archive)


def _realistic(name: str, version: str) -> bytes:
    found = realistic_chart_version(name)
    if found != version:
        raise AssertionError(f"tests/realistic_charts/{name}/Chart.yaml has version {found}, {DECLARED_FILE} declares {version}")
    return realistic_chart_archive(name)


def build_realistic_charts_dir(target: Path, declared_from: Path = ROOT / "charts") -> Path:
    """Write external.yaml, the realistic archives and versions.lock into target."""
    return _write_dir(target, declared_from, _realistic)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.support.standin_charts --realistic DIR`: a charts folder of the realistic stand-ins (make up-full)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--realistic", type=Path, required=True, metavar="DIR", help="charts folder to write")
    args = parser.parse_args(argv)
    print(build_realistic_charts_dir(args.realistic.resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
