"""Chart supply chain: `sync` fetches declared charts into the lock, `verify` checks them.

sync has the pinned helm pull each chart whose declaration changed (HTTP
repositories through their index, `oci://` registries by manifest; basic
auth from environment variables the declaration names, a CA file, plain
HTTP for a trusted OCI registry), all into a staging folder. It then checks
what helm fetched: the digest the repository publishes (an HTTP index
entry's sha256, refused when missing unless the declaration allows it; an
OCI manifest digest, recorded), the provenance of charts declared `signed`
(`helm pull --verify --keyring`), and that every archive entry stays inside
the chart folder. Only when every chart passed are the archives moved into
place and the lock written: a failure, the --deadline running out (helm is
stopped mid-download) or an interruption leaves the charts folder as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cli.helm_pull import OCI, Access, Deadline, pull
from cli.process import ToolError
from commands import ROOT
from model.charts import (
    DECLARED_FILE,
    LOCK_FILE,
    DeclaredChart,
    LockEntry,
    archive_name,
    load_declared,
    load_lock,
    sha256_file,
    verify_lock,
    write_lock,
)
from model.errors import InputError, entry_point
from model.yamlload import safe_load

STAGING_PREFIX = ".sync-"
# Declaration keys besides name, repository and version.
OPTIONAL_KEYS = {"auth", "caFile", "plainHttp", "signed", "keyring", "allowUnpublishedDigest"}


def _access(raw: dict[str, Any], where: str) -> Access:
    """Credentials come from environment variables named in the declaration, never from the file."""
    auth = raw.get("auth") or {}
    if not isinstance(auth, dict) or set(auth) - {"usernameEnv", "passwordEnv"}:
        raise InputError(f"{where}: auth takes usernameEnv and passwordEnv (names of environment variables)")
    username = os.environ.get(auth["usernameEnv"]) if auth.get("usernameEnv") else None
    password = os.environ.get(auth["passwordEnv"]) if auth.get("passwordEnv") else None
    if auth and (username is None or password is None):
        raise InputError(f"{where}: auth needs the environment variables {auth.get('usernameEnv')} and {auth.get('passwordEnv')} set")
    plain = raw.get("plainHttp", False)
    if not isinstance(plain, bool) or (plain and not str(raw.get("repository", "")).startswith(OCI)):
        raise InputError(f"{where}: plainHttp is true or false, and only for oci:// repositories (an HTTP repository's URL says http:// itself)")
    ca_file = raw.get("caFile")
    if ca_file is not None and not (isinstance(ca_file, str) and Path(ca_file).is_file()):
        raise InputError(f"{where}: caFile {ca_file!r} is not a readable file")
    return Access(username=username, password=password, ca_file=ca_file, plain_http=plain)


def _keyring(raw: dict[str, Any], charts: Path, where: str) -> Path | None:
    """The keyring of a chart declared `signed: true` (a path relative to the charts folder), else None."""
    signed = raw.get("signed", False)
    if not isinstance(signed, bool):
        raise InputError(f"{where}: signed is true or false")
    if not signed:
        return None
    keyring = raw.get("keyring")
    if not isinstance(keyring, str) or not keyring:
        raise InputError(f"{where}: signed: true needs keyring: <public keyring of the chart's publisher, relative to {charts}>")
    path = (charts / keyring).resolve()
    if not path.is_file():
        raise InputError(f"{where}: keyring {path} does not exist; add the publisher's public keyring (gpg --export) there")
    return path


def check_archive(path: Path, chart: str) -> None:
    """Refuse a truncated archive or one with entries outside its chart folder."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                name = member.name
                if name.startswith("/") or ".." in Path(name).parts or not name.startswith(f"{chart}/"):
                    raise InputError(f"chart {chart}: archive entry {name!r} points outside the chart folder; refusing it")
                if member.issym() or member.islnk():
                    raise InputError(f"chart {chart}: archive entry {name!r} is a link; refusing it")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InputError(f"chart {chart}: the archive is damaged or truncated ({error}); run the sync again") from None


def remove_stale_staging(charts: Path) -> None:
    """Staging folders of syncs that were killed (their process is gone): nothing of them is needed."""
    for folder in charts.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _raw_declared(charts: Path) -> dict[str, dict[str, Any]]:
    data = safe_load((charts / DECLARED_FILE).read_text()) or {}
    raw = {c["name"]: c for c in data.get("charts") or [] if isinstance(c, dict)}
    for name, entry in raw.items():
        unknown = set(entry) - {"name", "repository", "version"} - OPTIONAL_KEYS
        if unknown:
            raise InputError(f"{charts / DECLARED_FILE}: chart {name}: unknown keys {sorted(unknown)}; allowed besides name, repository, version: {sorted(OPTIONAL_KEYS)}")
    return raw


def sync(charts: Path, refresh: set[str] | None, deadline_s: float, warn: Any = None) -> list[str]:
    """Bring the archives and the lock in line with the declaration; return what was fetched.

    refresh: None fetches only what changed; an empty set refreshes every
    chart; names refresh those charts. warn: called with each warning line
    (default: printed to stderr).
    """
    say = warn or (lambda line: print(line, file=sys.stderr))
    declared = load_declared(charts)
    raw_declared = _raw_declared(charts)
    lock = load_lock(charts)
    unknown = (refresh or set()) - declared.keys()
    if unknown:
        raise InputError(f"--refresh names {sorted(unknown)}, which {charts / DECLARED_FILE} does not declare; declared: {sorted(declared)}")
    deadline = Deadline(deadline_s, f"charts-sync (--deadline {deadline_s:g}s)")
    todo: list[DeclaredChart] = []
    for name, chart in declared.items():
        entry = lock.get(name)
        current = entry is not None and entry.version == chart.version and entry.source == chart.repository \
            and (charts / entry.archive).is_file() and sha256_file(charts / entry.archive) == entry.sha256
        if not current or (refresh is not None and (not refresh or name in refresh)):
            todo.append(chart)
    # Every declaration is checked before anything is fetched.
    plans = []
    for chart in todo:
        where = f"{charts / DECLARED_FILE}: chart {chart.name}"
        raw = raw_declared[chart.name]
        plans.append((chart, _access(raw, where), _keyring(raw, charts, where), raw.get("allowUnpublishedDigest") is True))
    if not plans and lock.keys() == declared.keys():
        return []
    remove_stale_staging(charts)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=charts))
    try:
        fetched: dict[str, LockEntry] = {}
        for chart, access, keyring, allow_unpublished in plans:
            pulled = pull(chart.name, chart.version, chart.repository, staging, access, deadline, keyring,
                          allow_unpublished_digest=allow_unpublished)
            actual = sha256_file(pulled.archive)
            published = pulled.published_digest
            if not published:
                say(f"warning: chart {chart.name} {chart.version}: {chart.repository} publishes no digest for it "
                    "(allowUnpublishedDigest: true); only the lock's sha256 guards it from here on")
            elif not chart.repository.startswith(OCI) and published != actual:
                raise InputError(f"chart {chart.name} {chart.version}: the archive helm fetched has sha256 {actual}, "
                                 f"the index of {chart.repository} publishes {published}; refusing it")
            staged = staging / archive_name(chart.name, chart.version)
            staged.parent.mkdir(parents=True, exist_ok=True)
            os.replace(pulled.archive, staged)
            check_archive(staged, chart.name)
            fetched[chart.name] = LockEntry(
                name=chart.name, version=chart.version, source=chart.repository, archive=archive_name(chart.name, chart.version),
                sha256=actual, repository_digest=published, fetched=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                provenance=pulled.signer,
            )
        # Everything fetched and checked: now change the folder, archives first, lock last.
        (charts / "external").mkdir(exist_ok=True)
        for entry in fetched.values():
            os.replace(staging / entry.archive, charts / entry.archive)
        new_lock = {name: fetched.get(name) or lock[name] for name in declared}
        for name, old in lock.items():
            stale = name not in declared or (name in fetched and old.archive != fetched[name].archive)
            if stale and (charts / old.archive).is_file():
                (charts / old.archive).unlink()
        write_lock(charts, list(new_lock.values()))
        return sorted(fetched)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (timeout(1), CI cancelling) unwinds like Ctrl-C, so the staging folder is removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check every archive against the lock and the lock against the declaration")
    verify.add_argument("--charts-dir", default=str(ROOT / "charts"))
    run = sub.add_parser("sync", help="fetch declared charts whose declaration changed")
    run.add_argument("--charts-dir", default=str(ROOT / "charts"))
    run.add_argument("--refresh", nargs="*", metavar="CHART", help="fetch again (all, or the charts named)")
    run.add_argument("--deadline", type=float, default=600.0, help="seconds the whole sync may take")
    args = parser.parse_args(argv)
    charts = Path(args.charts_dir)
    signal.signal(signal.SIGTERM, _stop)
    try:
        if args.command == "sync":
            started = time.monotonic()
            fetched = sync(charts, None if args.refresh is None else set(args.refresh), args.deadline)
            print(f"charts-sync: fetched {fetched or 'nothing (all current)'} in {time.monotonic() - started:.1f}s; lock: {charts / LOCK_FILE}")
            return 0
        lock = verify_lock(charts)
    except InputError as error:
        print(f"charts-{args.command}: {charts}:\n{error}", file=sys.stderr)
        return 1
    except ToolError as error:
        print(f"charts-{args.command}: {error}; {charts} is unchanged", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"charts-{args.command}: interrupted; {charts} is unchanged", file=sys.stderr)
        return 130
    print(f"charts-verify: {len(lock)} of {len(load_declared(charts))} declared charts verified in {charts}")
    return 0


if __name__ == "__main__":
    entry_point(main, "charts")
