"""Offline bundle: `create` packs what an air-gapped site needs to deploy a stack, `unpack` checks it and lays it out.

A bundle is a gzip tar laid out like the project:

- ``charts/external.yaml``, ``charts/versions.lock``, ``charts/external/*.tgz``:
  every declared external chart, checked with `verify_lock` first (an
  unverified set is refused);
- ``images/<stack>.lock.yaml``: the stack's images (commands.images), rendered
  from those charts;
- ``Pulumi.<stack>.yaml`` as it is (secrets stay encrypted) and the stack file
  it `inherits`, if any;
- ``toolchain/tools.toml``, ``requirements.txt``, ``constraints.txt``: the pinned tools;
- ``SHA256SUMS`` (sha256sum format) covering every other file.

Entries are regular files in sorted order with mtime 0, uid/gid 0 and mode
0644, gzip without name or time: the same inputs give the same bytes.

`unpack` reads the whole bundle into memory and checks it before it writes
anything: no SHA256SUMS, an entry outside the bundle (absolute, ``..``), a
link or device, a file SHA256SUMS lists but the bundle lacks, a file it does
not list, or a checksum that differs all refuse the bundle and leave the
target untouched. Files are written to a staging folder beside the target,
the charts are verified there, and the folder is then renamed into place.
After it, ``astrago-deploy:chartsDir: <into>/charts`` deploys from the bundle.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from commands.images import WORKERS, collect
from model.charts import DECLARED_FILE, LOCK_FILE, verify_lock
from model.errors import InputError, entry_point
from model.stackfile import file_name, stack_chain

ROOT = Path(__file__).resolve().parent.parent
SUMS = "SHA256SUMS"
TOOL_PINS = ("toolchain/tools.toml", "requirements.txt", "constraints.txt")
CHARTS = "charts"
# A bundle holds charts and small text files; anything beyond these is not one of ours.
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
AGAIN = "copy the bundle again from where it was made and compare its sha256 with the one `make bundle` printed"


@dataclass(frozen=True)
class Created:
    """What `create` wrote."""

    path: Path
    sha256: str
    files: tuple[str, ...]
    """Paths inside the bundle, SHA256SUMS included."""
    image_warnings: tuple[str, ...]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_files(stack: str, root: Path = ROOT, charts_dir: str | None = None, workers: int = WORKERS) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """The bundle's files by path (SHA256SUMS included) and the image warnings; InputError before anything is written."""
    # The stack's file and every file it inherits from (model.stackfile's rule), all checked first.
    stack_files = stack_chain(root, stack)
    charts = Path(charts_dir) if charts_dir else root / CHARTS
    if not charts.is_absolute():
        charts = root / charts
    try:
        lock = verify_lock(charts)
    except InputError as error:
        raise InputError(*(f"refusing to bundle an unverified chart set: {p}" for p in error.problems)) from None
    files: dict[str, bytes] = {
        f"{CHARTS}/{DECLARED_FILE}": (charts / DECLARED_FILE).read_bytes(),
        f"{CHARTS}/{LOCK_FILE}": (charts / LOCK_FILE).read_bytes(),
    }
    for entry in lock.values():
        files[f"{CHARTS}/{entry.archive}"] = (charts / entry.archive).read_bytes()
    images = collect(stack, root, str(charts), workers=workers)
    files[f"images/{stack}.lock.yaml"] = images.to_yaml().encode()
    for stack_file_of in stack_files:
        files[file_name(stack_file_of.stack)] = (root / file_name(stack_file_of.stack)).read_bytes()
    for pin in TOOL_PINS:
        if not (root / pin).is_file():
            raise InputError(f"{root / pin} is missing; the bundle records the pinned tool versions from it (restore it from git)")
        files[pin] = (root / pin).read_bytes()
    files[SUMS] = sums_text(files).encode()
    return files, tuple(images.warnings())


def sums_text(files: dict[str, bytes]) -> str:
    """SHA256SUMS for every file but itself, sorted by path, in `sha256sum` format."""
    return "".join(f"{_sha256(data)}  {path}\n" for path, data in sorted(files.items()) if path != SUMS)


def write_tar(files: dict[str, bytes], out: Path) -> str:
    """Write a deterministic gzip tar of files atomically; return its sha256."""
    raw = io.BytesIO()
    # No file name and time 0 in the gzip header; fixed level: same bytes on every run.
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(files[path]))
    data = raw.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
    return _sha256(data)


def create(stack: str, out: Path, root: Path = ROOT, charts_dir: str | None = None, workers: int = WORKERS) -> Created:
    """Check the chart set, list the stack's images and write the bundle."""
    files, warnings = bundle_files(stack, root, charts_dir, workers)
    digest = write_tar(files, out)
    return Created(path=out, sha256=digest, files=tuple(sorted(files)), image_warnings=warnings)


# --- unpack ---------------------------------------------------------------------

def _safe_path(name: str) -> str | None:
    """The entry's normalised relative path, or None when it could land outside the target."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        return None
    path = PurePosixPath(name)
    if any(part in ("..", "") for part in path.parts) or path.is_absolute():
        return None
    normal = "/".join(p for p in path.parts if p != ".")
    return normal or None


def read_bundle(bundle: Path) -> dict[str, bytes]:
    """Every file of the bundle, in memory; InputError naming each entry that may not be extracted."""
    where = f"bundle {bundle}"
    if not bundle.is_file():
        raise InputError(f"{where}: no such file; give the path of the .tar.gz `make bundle` wrote")
    files: dict[str, bytes] = {}
    problems: list[str] = []
    total = 0
    try:
        with tarfile.open(bundle, mode="r:gz") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise InputError(f"{where}: more than {MAX_MEMBERS} entries; this is not a bundle made by `make bundle`")
                path = _safe_path(member.name)
                if path is None:
                    problems.append(f"{where}: entry {member.name!r} points outside the bundle folder (absolute or '..'); refusing the bundle: {AGAIN}")
                    continue
                if member.isdir():
                    continue  # folders are implied by the files
                if not member.isfile():
                    kind = "a link" if member.issym() or member.islnk() else "not a regular file"
                    problems.append(f"{where}: entry {member.name!r} is {kind}; a bundle holds regular files only; refusing the bundle: {AGAIN}")
                    continue
                if member.size > MAX_MEMBER_BYTES or total + member.size > MAX_TOTAL_BYTES:
                    raise InputError(f"{where}: entry {member.name!r} makes the bundle larger than a chart bundle can be; refusing it: {AGAIN}")
                if path in files:
                    problems.append(f"{where}: entry {path!r} appears twice; refusing the bundle: {AGAIN}")
                    continue
                stream = archive.extractfile(member)
                data = stream.read() if stream is not None else b""
                total += len(data)
                files[path] = data
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as error:
        raise InputError(f"{where}: not a gzip tar or damaged ({error}); {AGAIN}") from None
    if problems:
        raise InputError(*problems)
    return files


def check_bundle(files: dict[str, bytes], bundle: Path) -> None:
    """Check every file against SHA256SUMS; InputError listing every missing, extra or altered file."""
    where = f"bundle {bundle}"
    if SUMS not in files:
        raise InputError(f"{where}: has no {SUMS}, so nothing in it can be checked; refusing it: make it again with `make bundle STACK=<stack>`")
    expected: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(files[SUMS].decode(errors="replace").splitlines(), start=1):
        match = SUM_LINE.match(line)
        path = _safe_path(match.group(2)) if match else None
        if not match or path is None:
            problems.append(f"{where}: {SUMS} line {number} is not '<sha256>  <relative path>': {line[:120]!r}; {AGAIN}")
            continue
        if path in expected:
            problems.append(f"{where}: {SUMS} lists {path} twice; {AGAIN}")
        expected[path] = match.group(1)
    for path in sorted(expected):
        if path == SUMS:
            problems.append(f"{where}: {SUMS} lists itself; {AGAIN}")
        elif path not in files:
            problems.append(f"{where}: {SUMS} lists {path}, which the bundle lacks; the bundle is incomplete: {AGAIN}")
        elif _sha256(files[path]) != expected[path]:
            problems.append(f"{where}: {path} has sha256 {_sha256(files[path])}, {SUMS} expects {expected[path]}; the file was altered: {AGAIN}")
    for path in sorted(set(files) - set(expected) - {SUMS}):
        problems.append(f"{where}: {path} is not listed in {SUMS}; a file was added after the bundle was made: {AGAIN}")
    if problems:
        raise InputError(*problems)


def unpack(bundle: Path, into: Path) -> tuple[str, ...]:
    """Check the bundle completely, then lay it out in `into` (new or empty); return the files written."""
    if into.is_symlink() or (into.exists() and (not into.is_dir() or any(into.iterdir()))):
        raise InputError(f"{into}: exists and is not an empty folder; unpack into a new folder (nothing is overwritten)")
    files = read_bundle(bundle)
    check_bundle(files, bundle)
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.unpack-", dir=into.parent))
    try:
        for path, data in sorted(files.items()):
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o644)
        if (staging / CHARTS / DECLARED_FILE).is_file():
            try:
                verify_lock(staging / CHARTS)
            except InputError as error:
                raise InputError(*(f"bundle {bundle}: its charts do not verify: {p}" for p in error.problems)) from None
        staging.chmod(0o755)  # mkdtemp makes it private; the unpacked folder is an ordinary one
        if into.exists():
            into.rmdir()  # checked empty above
        staging.rename(into)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return tuple(sorted(files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.bundle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="pack the charts, images lock, stack file(s) and tool pins of a stack")
    make.add_argument("--stack", required=True)
    make.add_argument("--out", required=True, help="the bundle to write (.tar.gz)")
    make.add_argument("--charts-dir", help="charts folder to bundle (default: charts/)")
    take = sub.add_parser("unpack", help="check a bundle and lay it out in a new folder")
    take.add_argument("--bundle", required=True)
    take.add_argument("--into", help="new or empty folder (default: the bundle's path without .tar.gz)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.command == "create":
            created = create(args.stack, Path(args.out), charts_dir=args.charts_dir)
            for line in created.image_warnings:
                print(line)
            print(f"bundle: {created.path} ({len(created.files)} files, {created.path.stat().st_size} bytes) in {time.monotonic() - started:.2f}s")
            print(f"bundle: sha256 {created.sha256}  (compare it at the site before `make unbundle`)")
            return 0
        bundle = Path(args.bundle)
        into = Path(args.into) if args.into else bundle.with_name(bundle.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz"))
        written = unpack(bundle, into)
    except InputError as error:
        print(f"bundle {args.command}: refused, nothing was written:\n{error}", file=sys.stderr)
        return 1
    except OSError as error:
        # Disk full, no permission: the staging folder is already removed, the target never appeared.
        print(f"bundle {args.command}: failed, nothing was written: {error}", file=sys.stderr)
        return 1
    print(f"bundle: {len(written)} files checked against {SUMS} and unpacked into {into} in {time.monotonic() - started:.2f}s")
    print(f"bundle: deploy from it with `astrago-deploy:chartsDir: {(into / CHARTS).resolve()}`")
    return 0


if __name__ == "__main__":
    entry_point(main, "bundle")
