"""Chart supply chain: `sync` fetches declared charts into the lock, `verify` checks them.

sync resolves each declared chart in its repository's index.yaml (HTTP, with
basic auth and a custom CA when declared), downloads the archive, checks the
digest the repository published and that every archive entry stays inside the
chart folder, then moves the archives into place and writes the lock. All
downloads land in a staging folder first: a failure or an interruption leaves
no partial archive and an unchanged lock. Only charts whose declaration
changed are fetched unless --refresh is given.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from model.charts import DECLARED_FILE, LOCK_FILE, DeclaredChart, LockEntry, archive_name, load_declared, load_lock, sha256_file, verify_lock
from model.errors import InputError, entry_point

ROOT = Path(__file__).resolve().parent.parent
# One request may take this long; the whole sync is bounded by --deadline.
REQUEST_TIMEOUT_S = 30
RETRIES = 4
BACKOFF_S = 0.5
# Charts are small; anything larger is not a chart archive.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Access:
    """How to reach one repository: credentials and CA from the declaration."""

    username: str | None = None
    password: str | None = None
    ca_file: str | None = None


class TransientError(Exception):
    """A failure worth retrying (timeouts, resets, 5xx)."""


def _access(raw: dict[str, Any], where: str) -> Access:
    """Credentials come from environment variables named in the declaration, never from the file."""
    auth = raw.get("auth") or {}
    username = os.environ.get(auth["usernameEnv"]) if auth.get("usernameEnv") else None
    password = os.environ.get(auth["passwordEnv"]) if auth.get("passwordEnv") else None
    if auth and (username is None or password is None):
        raise InputError(f"{where}: auth needs the environment variables {auth.get('usernameEnv')} and {auth.get('passwordEnv')} set")
    return Access(username=username, password=password, ca_file=raw.get("caFile"))


def _fetch(url: str, access: Access, deadline: float) -> bytes:
    """GET with retries and backoff on transient errors, bounded by the deadline."""
    request = urllib.request.Request(url, headers={"User-Agent": "astrago-deploy-charts-sync"})
    if access.username is not None:
        token = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=access.ca_file) if access.ca_file else None
    delay = BACKOFF_S
    for attempt in range(1, RETRIES + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InputError(f"{url}: gave up, the sync's time limit ran out (raise it with --deadline)")
        try:
            with urllib.request.urlopen(request, timeout=min(REQUEST_TIMEOUT_S, remaining), context=context) as response:
                data: bytes = response.read(MAX_ARCHIVE_BYTES + 1)
                if len(data) > MAX_ARCHIVE_BYTES:
                    raise InputError(f"{url}: larger than {MAX_ARCHIVE_BYTES} bytes; not a chart archive")
                return data
        except urllib.error.HTTPError as error:
            if error.code < 500 and error.code != 429:
                raise InputError(f"{url}: the repository answered {error.code} {error.reason}") from None
            failure: Exception = TransientError(f"{error.code} {error.reason}")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            failure = TransientError(str(getattr(error, "reason", error)))
        if attempt == RETRIES:
            raise InputError(f"{url}: unreachable after {RETRIES} attempts ({failure}); check the URL, the network or the proxy") from None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay *= 2
    raise AssertionError("unreachable")


def _resolve(chart: DeclaredChart, index: dict[str, Any], index_url: str) -> tuple[str, str]:
    """The archive URL and published digest of chart@version in an index."""
    entries = (index.get("entries") or {}).get(chart.name)
    if not isinstance(entries, list):
        raise InputError(f"chart {chart.name}: not in the index of {chart.repository}")
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("version")) in (chart.version, chart.version.lstrip("v")):
            urls = entry.get("urls") or []
            if not urls:
                raise InputError(f"chart {chart.name} {chart.version}: the index of {chart.repository} lists no URL for it")
            return urllib.parse.urljoin(index_url, urls[0]), str(entry.get("digest") or "")
    versions = sorted(str(e.get("version")) for e in entries if isinstance(e, dict))
    raise InputError(f"chart {chart.name}: version {chart.version} is not in the index of {chart.repository}; it has {versions[-10:]}")


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


def sync(charts: Path, refresh: set[str] | None, deadline_s: float) -> list[str]:
    """Bring the archives and the lock in line with the declaration; return what was fetched.

    refresh: None fetches only what changed; an empty set refreshes every
    chart; names refresh those charts.
    """
    declared = load_declared(charts)
    raw_declared = {c["name"]: c for c in (yaml.safe_load((charts / DECLARED_FILE).read_text()) or {}).get("charts", [])}
    lock = load_lock(charts)
    unknown = (refresh or set()) - declared.keys()
    if unknown:
        raise InputError(f"--refresh names {sorted(unknown)}, which {charts / DECLARED_FILE} does not declare; declared: {sorted(declared)}")
    deadline = time.monotonic() + deadline_s
    todo = []
    for name, chart in declared.items():
        entry = lock.get(name)
        current = entry is not None and entry.version == chart.version and entry.source == chart.repository \
            and (charts / entry.archive).is_file() and sha256_file(charts / entry.archive) == entry.sha256
        if not current or (refresh is not None and (not refresh or name in refresh)):
            todo.append(chart)
    indexes: dict[str, dict[str, Any]] = {}
    staging = Path(tempfile.mkdtemp(prefix=".sync-", dir=charts))
    try:
        fetched: dict[str, LockEntry] = {}
        for chart in todo:
            where = f"{charts / DECLARED_FILE}: chart {chart.name}"
            if chart.repository.startswith("oci://"):
                raise InputError(f"{where}: oci:// repositories are not supported by this sync yet; declare the chart's HTTP repository")
            access = _access(raw_declared[chart.name], where)
            index_url = chart.repository.rstrip("/") + "/index.yaml"
            if index_url not in indexes:
                try:
                    index = yaml.safe_load(_fetch(index_url, access, deadline))
                except yaml.YAMLError as error:
                    raise InputError(f"{index_url}: the index is not valid YAML ({error})") from None
                if not isinstance(index, dict) or "entries" not in index:
                    raise InputError(f"{index_url}: not a chart repository index (no `entries`)")
                indexes[index_url] = index
            url, published = _resolve(chart, indexes[index_url], index_url)
            data = _fetch(url, access, deadline)
            actual = hashlib.sha256(data).hexdigest()
            if published and published != actual:
                raise InputError(f"chart {chart.name} {chart.version}: {url} has sha256 {actual}, the repository's index publishes {published}; refusing it")
            staged = staging / archive_name(chart.name, chart.version)
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(data)
            check_archive(staged, chart.name)
            fetched[chart.name] = LockEntry(
                name=chart.name, version=chart.version, source=chart.repository, archive=archive_name(chart.name, chart.version),
                sha256=actual, repository_digest=published, fetched=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
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


def write_lock(charts: Path, entries: list[LockEntry]) -> None:
    """Write the lock atomically (a reader sees the old or the new lock, never half)."""
    data = {"charts": [{
        "name": e.name, "version": e.version, "source": e.source, "archive": e.archive,
        "sha256": e.sha256, "repositoryDigest": e.repository_digest, "fetched": e.fetched,
    } for e in sorted(entries, key=lambda e: e.name)]}
    header = "# Generated by `make charts-sync`; do not edit. Checked by `make charts-verify` and every preview.\n"
    temporary = charts / f".{LOCK_FILE}.tmp"
    temporary.write_text(header + yaml.safe_dump(data, sort_keys=False))
    os.replace(temporary, charts / LOCK_FILE)


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
    print(f"charts-verify: {len(lock)} of {len(load_declared(charts))} declared charts verified in {charts}")
    return 0


if __name__ == "__main__":
    entry_point(main, "charts")
