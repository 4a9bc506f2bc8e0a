"""Charts: digests of the repo's own charts and verification of locked archives.

External charts are declared in ``<charts>/external.yaml`` (name, repository,
version), fetched by ``make charts-sync`` into ``<charts>/external/`` and
recorded in ``<charts>/versions.lock``. The program and ``make charts-verify``
run the same `verify_lock` before anything is applied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from model import schemas
from model.errors import InputError
from model.yamlload import load_file

DECLARED_FILE = "external.yaml"
LOCK_FILE = "versions.lock"
ARCHIVE_DIR = "external"
SYNC_HINT = "make charts-sync"


@dataclass(frozen=True)
class DeclaredChart:
    """An external chart as the team declares it."""

    name: str
    repository: str
    """HTTP chart repository URL or oci:// reference."""
    version: str


@dataclass(frozen=True)
class LockEntry:
    """What `make charts-sync` fetched for one chart."""

    name: str
    version: str
    source: str
    archive: str
    """Archive path relative to the charts folder."""
    sha256: str
    repository_digest: str
    fetched: str
    provenance: str = ""
    """For a chart declared signed: who signed it and the key's fingerprint, as `helm pull --verify` reported."""


def archive_name(name: str, version: str) -> str:
    return f"{ARCHIVE_DIR}/{name}-{version}.tgz"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chart_digest(path: Path) -> str:
    """sha256 of a chart's content: an archive's bytes, or a directory's files.

    For a directory every file counts by its relative path and bytes, so an
    edited template changes the digest even when Chart.yaml's version does not.
    """
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def chart_version(chart_dir: Path) -> str:
    """The version in a chart directory's Chart.yaml (checked against schemas/chart.schema.json)."""
    document = load_file(chart_dir / "Chart.yaml", hint=f"every chart under {chart_dir.parent} needs one")
    schemas.check("chart", document)
    return str(document.data["version"])


def load_declared(charts: Path) -> dict[str, DeclaredChart]:
    """The declared external charts (schemas/external-charts.schema.json); InputError naming file, line and key."""
    path = charts / DECLARED_FILE
    if not path.is_file():
        raise InputError(f"{path}: the list of external charts is missing")
    document = load_file(path)
    schemas.check("external-charts", document)
    declared: dict[str, DeclaredChart] = {}
    for index, raw in enumerate(document.data["charts"]):
        if raw["name"] in declared:
            raise InputError(f"{document.where(('charts', index))}: chart {raw['name']!r} is declared twice")
        declared[raw["name"]] = DeclaredChart(raw["name"], raw["repository"], raw["version"])
    return declared


def load_lock(charts: Path) -> dict[str, LockEntry]:
    """Read the lock (schemas/versions-lock.schema.json); an absent lock is empty (nothing synced yet)."""
    path = charts / LOCK_FILE
    if not path.is_file():
        return {}
    hint = f"regenerate it with `{SYNC_HINT} ARGS=--refresh`"
    document = load_file(path, hint=hint)
    found = schemas.problems("versions-lock", document)
    if found:
        raise InputError(*(f"{p}; {hint}" for p in found))
    entries: dict[str, LockEntry] = {}
    for raw in document.data["charts"]:
        entry = LockEntry(
            name=raw["name"], version=raw["version"], source=raw["source"], archive=raw["archive"],
            sha256=raw["sha256"], repository_digest=str(raw.get("repositoryDigest") or ""), fetched=raw.get("fetched", ""),
            provenance=str(raw.get("provenance") or ""),
        )
        entries[entry.name] = entry
    return entries


def verify_lock(charts: Path, required: set[str] | None = None) -> dict[str, LockEntry]:
    """Check declaration, lock and archives agree; return the lock.

    required: charts the caller needs present (None: all declared). Every
    other mismatch is an error whatever is required: an archive nobody
    locked, a lock entry nobody declared, a version differing from the
    declaration, a checksum differing from the lock (a tampered archive).
    """
    declared = load_declared(charts)
    lock = load_lock(charts)
    wanted = set(declared) if required is None else required
    problems: list[str] = []
    for name in sorted(wanted - declared.keys()):
        problems.append(f"chart {name!r} is used by a release but not declared in {charts / DECLARED_FILE}; add it with its repository and version")
    for name in sorted(lock.keys() - declared.keys()):
        problems.append(f"{charts / LOCK_FILE}: chart {name!r} is locked but not declared; run `{SYNC_HINT}` to drop it")
    for name, chart in sorted(declared.items()):
        entry = lock.get(name)
        if entry is None:
            if name in wanted:
                problems.append(f"chart {name} {chart.version} is declared but not fetched; run `{SYNC_HINT}` where the repository {chart.repository} is reachable (or unpack an offline bundle)")
            continue
        if entry.version != chart.version:
            problems.append(f"chart {name}: {charts / DECLARED_FILE} asks for {chart.version}, the lock holds {entry.version}; run `{SYNC_HINT}`")
            continue
        archive = charts / entry.archive
        if not archive.is_file():
            if name in wanted:
                problems.append(f"chart {name} {chart.version}: archive {archive} is missing; run `{SYNC_HINT}` (or unpack the offline bundle)")
            continue
        actual = sha256_file(archive)
        if actual != entry.sha256:
            problems.append(
                f"chart {name} {chart.version}: {archive} has sha256 {actual}, the lock expects {entry.sha256}; "
                f"the archive was altered: restore it with `{SYNC_HINT} ARGS='--refresh {name}'`"
            )
    locked_archives = {entry.archive for entry in lock.values()}
    archive_dir = charts / ARCHIVE_DIR
    if archive_dir.is_dir():
        for extra in sorted(archive_dir.iterdir()):
            if extra.name.startswith("."):
                continue
            if f"{ARCHIVE_DIR}/{extra.name}" not in locked_archives:
                problems.append(f"{extra} is not in {charts / LOCK_FILE}; delete it or declare the chart and run `{SYNC_HINT}`")
    if problems:
        raise InputError(*problems)
    return lock


def unverified_lock(charts: Path) -> dict[str, LockEntry]:
    """Lock entries for every declared chart, without touching archives (read-only comparisons).

    A chart not in the lock gets its declared version and an empty digest.
    """
    lock = load_lock(charts)
    return {
        name: lock[name] if name in lock and lock[name].version == chart.version else LockEntry(
            name=name, version=chart.version, source=chart.repository, archive=archive_name(name, chart.version),
            sha256="", repository_digest="", fetched="",
        )
        for name, chart in load_declared(charts).items()
    }


STAGE_DIR = Path(".state/charts")
"""Where external archives are staged by content for the Release's `chart` input (relative to the project root)."""


def staged_path(sha256: str) -> str:
    """The Release's chart path of an archive: its content digest, not the folder it came from."""
    return (STAGE_DIR / f"{sha256}.tgz").as_posix()


def stage_archive(root: Path, source: Path, sha256: str) -> str:
    """Make `.state/charts/<sha256>.tgz` hold the (verified) archive; return that path relative to root.

    Moving the same archives to another charts folder (an unpacked bundle)
    then changes no Release input. A copy, not a hard link: a link would change with
    an archive edited in place. Written atomically, so parallel runs agree.
    """
    relative = staged_path(sha256)
    target = root / relative
    if target.is_file():
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.copyfile(source, temporary)
    temporary.replace(target)
    return relative


def write_lock(charts: Path, entries: list[LockEntry]) -> None:
    """Write the lock atomically (a reader sees the old or the new lock, never half)."""
    rows = []
    for e in sorted(entries, key=lambda e: e.name):
        row = {"name": e.name, "version": e.version, "source": e.source, "archive": e.archive,
               "sha256": e.sha256, "repositoryDigest": e.repository_digest, "fetched": e.fetched}
        if e.provenance:
            row["provenance"] = e.provenance
        rows.append(row)
    header = "# Generated by `make charts-sync`; do not edit. Checked by `make charts-verify` and every preview.\n"
    temporary = charts / f".{LOCK_FILE}.tmp"
    temporary.write_text(header + yaml.safe_dump({"charts": rows}, sort_keys=False))
    os.replace(temporary, charts / LOCK_FILE)
