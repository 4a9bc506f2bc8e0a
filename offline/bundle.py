"""The offline bundle: `create` packs and signs what an air-gapped site needs, `unpack` verifies it and lays it out, `push_images` sends its images to the site registry.

A bundle is a tar (gzip when its name ends in .gz; image layers are
compressed already, so plain tar is the default) laid out like the project:

- ``charts/external.yaml``, ``charts/versions.lock``, ``charts/external/*.tgz``:
  every declared external chart, checked with `verify_lock` first;
- ``images/oci/``: an OCI image layout holding every image of the stack by
  digest (offline.transfer), and ``images/<stack>.lock.yaml``: each
  image's reference, releases, digest, size and platforms;
- ``Pulumi.<stack>.yaml`` as it is (secrets stay encrypted) and the stack file
  it `inherits`, if any; ``toolchain/tools.toml``, ``requirements.txt``,
  ``constraints.txt``: the pinned tools;
- ``SHA256SUMS`` (sha256sum format) covering every other file, and
  ``SHA256SUMS.sig``: its Ed25519 signature (model.signing). Both come first.

Entries are regular files in sorted order with mtime 0, uid/gid 0 and mode
0644 (gzip without name or time): the same inputs give the same bytes.

`unpack` first prints the bundle's sha256 and compares it with an expected
one when given, then verifies the signature of SHA256SUMS against the site's
trusted keys before it writes anything; an unsigned bundle, an unknown key
or a bad signature is refused. Each file is then checked against SHA256SUMS
as it streams into a staging folder beside the target; an entry outside the
bundle, a link, a file not listed, a listed file missing, a checksum that
differs, an image layout that holds an image the lock does not list or lacks
a blob, and charts that do not verify all refuse the bundle, and the staging
folder is removed: the target appears only complete.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import yaml

from cli import crane as crane_cli
from cli.process import ROOT
from model.charts import DECLARED_FILE, LOCK_FILE, sha256_file, verify_lock
from model.errors import InputError
from model.images_lock import ImagesLock, LockedImage, load_images_lock, write_images_lock
from model.oci_layout import check_layout
from model.signing import load_private, load_public, sign, verify
from model.stackfile import PROJECT, file_name, stack_chain
from offline.image_list import WORKERS, collect
from offline.transfer import DEFAULT_PLATFORMS, fetch, load_mirrors, push, reusable
from postrender.plan import check_registry

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
TOOL_PINS = ("toolchain/tools.toml", "requirements.txt", "constraints.txt")
CHARTS = "charts"
LAYOUT = "images/oci"
MAX_MEMBERS = 200_000
MAX_SUMS_BYTES = 64 * 1024 * 1024
SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
AGAIN = "copy the bundle again from where it was made and compare its sha256 with the one `make bundle` printed"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Created:
    """What `create` wrote."""

    path: Path
    sha256: str
    files: tuple[str, ...]
    """Paths inside the bundle, SHA256SUMS and its signature included."""
    image_warnings: tuple[str, ...]
    images: tuple[LockedImage, ...]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def site_platforms(stack_files: list[Path]) -> tuple[str, ...]:
    """`astrago-deploy:offline.platforms` (a list or a comma-separated string) of the nearest stack file of the chain that sets it."""
    for path in stack_files:
        offline = ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).get(f"{PROJECT}:offline") or {}
        raw = offline.get("platforms") if isinstance(offline, dict) else None
        if raw:
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(i, str) and re.match(r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$", i.strip()) for i in items):
                raise InputError(f"{path}: astrago-deploy:offline.platforms must list os/arch[/variant] names, e.g. [linux/amd64, linux/arm64]")
            return tuple(sorted(i.strip() for i in items))
    return DEFAULT_PLATFORMS


def bundle_files(stack: str, root: Path, charts_dir: str | None, work: Path, *, workers: int = WORKERS,
                 mirrors: Path | None = None, reuse: list[Path] | None = None, images: bool = True,
                 say: Say = print) -> tuple[dict[str, bytes | Path], tuple[str, ...], ImagesLock]:
    """The bundle's files by path (bytes, or a file under work), the image warnings and the images; InputError first."""
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise InputError(f"{stack_file}: no such stack file; name a stack of this project (local, dev, stage, prod or a site)")
    charts = Path(charts_dir) if charts_dir else root / CHARTS
    if not charts.is_absolute():
        charts = root / charts
    try:
        chart_lock = verify_lock(charts)
    except InputError as error:
        raise InputError(*(f"refusing to bundle an unverified chart set: {p}" for p in error.problems)) from None
    files: dict[str, bytes | Path] = {
        f"{CHARTS}/{DECLARED_FILE}": (charts / DECLARED_FILE).read_bytes(),
        f"{CHARTS}/{LOCK_FILE}": (charts / LOCK_FILE).read_bytes(),
    }
    for entry in chart_lock.values():
        files[f"{CHARTS}/{entry.archive}"] = (charts / entry.archive).read_bytes()
    # The stack's file and every file it inherits from, by model.stackfile's rule (the program's): nearest first.
    chain_files = [root / file_name(f.stack) for f in stack_chain(root, stack)]
    for path in chain_files:
        files[path.name] = path.read_bytes()
    for pin in TOOL_PINS:
        if not (root / pin).is_file():
            raise InputError(f"{root / pin} is missing; the bundle records the pinned tool versions from it (restore it from git)")
        files[pin] = (root / pin).read_bytes()
    platforms = site_platforms(chain_files)
    mirror_map = load_mirrors(mirrors)
    old = reusable([_reuse_folder(path, work / f"reuse-{n}") for n, path in enumerate(reuse or [])], platforms)
    lock = collect(stack, root, str(charts), workers=workers)
    if images and lock.images:
        layout = work / LAYOUT
        with crane_cli.session() as crane:
            lock = fetch(lock, layout, crane, mirror_map, platforms, old, say)
        for path in sorted(layout.rglob("*")):
            if path.is_file():
                files[path.relative_to(work).as_posix()] = path
    lock_file = work / "images" / f"{stack}.lock.yaml"
    write_images_lock(lock, lock_file)
    files[f"images/{stack}.lock.yaml"] = lock_file.read_bytes()
    return files, tuple(lock.warnings()), lock


def _reuse_folder(path: Path, scratch: Path) -> Path:
    """A --reuse source as a folder: an unpacked bundle or layout as it is; a bundle file's images extracted into scratch.

    Nothing from it is trusted: every blob taken is hashed again when SHA256SUMS is written.
    """
    if path.is_dir():
        return path
    if not path.is_file():
        raise InputError(f"--reuse {path}: no such bundle, unpacked bundle or image layout")
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                name = _safe_path(member.name)
                if name is None or not member.isfile() or not name.startswith("images/"):
                    continue
                target = scratch / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                with target.open("wb") as out:
                    while source is not None and (block := source.read(1 << 20)):
                        out.write(block)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputError(f"--reuse {path}: not a bundle ({error})") from None
    return scratch


def sums_text(files: dict[str, bytes | Path]) -> str:
    """SHA256SUMS for every file but itself and its signature, sorted by path, in `sha256sum` format."""
    lines = []
    for path, data in sorted(files.items()):
        if path in (SUMS, SIGNATURE):
            continue
        # Every file is hashed, blobs too: a blob taken from a --reuse layout was never checked by crane.
        digest = _sha256_bytes(data) if isinstance(data, bytes) else sha256_file(data)
        if path.startswith(f"{LAYOUT}/blobs/sha256/") and digest != path.rsplit("/", 1)[-1]:
            raise InputError(f"{path}: blob content has sha256 {digest}, not its name; remove the layout it came from (--reuse) and fetch again")
        lines.append(f"{digest}  {path}\n")
    return "".join(lines)


def write_tar(files: dict[str, bytes | Path], out: Path) -> str:
    """Write a deterministic tar (gzip for .gz) of files atomically, SHA256SUMS and its signature first; return its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    first = [p for p in (SUMS, SIGNATURE) if p in files]
    order = first + sorted(set(files) - set(first))
    try:
        with temporary.open("wb") as raw:
            stream: IO[bytes] | gzip.GzipFile = raw
            compressed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) if out.name.endswith(".gz") else None
            if compressed is not None:
                stream = compressed
            with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as archive:
                for path in order:
                    data = files[path]
                    info = tarfile.TarInfo(path)
                    info.size = len(data) if isinstance(data, bytes) else data.stat().st_size
                    info.mtime = 0
                    info.mode = 0o644
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if isinstance(data, bytes):
                        archive.addfile(info, io.BytesIO(data))
                    else:
                        with data.open("rb") as source:
                            archive.addfile(info, source)
            if compressed is not None:
                compressed.close()
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
    return sha256_file(out)


def create(stack: str, out: Path, root: Path = ROOT, charts_dir: str | None = None, workers: int = WORKERS, *,
           signing_key: Path | None, mirrors: Path | None = None, reuse: list[Path] | None = None, images: bool = True,
           say: Say = print) -> Created:
    """Check the chart set, fetch the stack's images, sign and write the bundle."""
    key = load_private(signing_key) if signing_key else None
    if key is None:
        raise InputError("no signing key: give SIGNING_KEY=<private key file> (create one with `make bundle-key`); a site refuses unsigned bundles")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.work-", dir=out.parent))
    try:
        files, warnings, locked = bundle_files(stack, root, charts_dir, work, workers=workers, mirrors=mirrors,
                                               reuse=reuse, images=images, say=say)
        sums = sums_text(files).encode()
        files[SUMS] = sums
        files[SIGNATURE] = sign(sums, key, SUMS)
        digest = write_tar(files, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Created(path=out, sha256=digest, files=tuple(sorted(files)), image_warnings=warnings, images=locked.images)


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


def parse_sums(text: bytes, where: str) -> dict[str, str]:
    expected: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.decode(errors="replace").splitlines(), start=1):
        match = SUM_LINE.match(line)
        path = _safe_path(match.group(2)) if match else None
        if not match or path is None:
            problems.append(f"{where}: {SUMS} line {number} is not '<sha256>  <relative path>': {line[:120]!r}; {AGAIN}")
            continue
        if path in expected or path in (SUMS, SIGNATURE):
            problems.append(f"{where}: {SUMS} lists {path} twice or lists itself; {AGAIN}")
        if path.startswith(f"{LAYOUT}/blobs/sha256/") and path.rsplit("/", 1)[-1] != match.group(1):
            problems.append(f"{where}: {SUMS} gives blob {path} the sha256 {match.group(1)}; a blob's name is its sha256; {AGAIN}")
        expected[path] = match.group(1)
    if problems:
        raise InputError(*problems)
    return expected


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, limit: int, where: str) -> bytes:
    if not member.isfile() or member.size > limit:
        raise InputError(f"{where}: entry {member.name} is not a small regular file; {AGAIN}")
    stream = archive.extractfile(member)
    return stream.read() if stream is not None else b""


def unpack(bundle: Path, into: Path, trusted: list[Path], expected_sha256: str | None = None, say: Say = print) -> tuple[str, ...]:
    """Verify the bundle (sha256, signature, every file, the image layout, the charts), then lay it out in `into` (new or empty)."""
    where = f"bundle {bundle}"
    if into.is_symlink() or (into.exists() and (not into.is_dir() or any(into.iterdir()))):
        raise InputError(f"{into}: exists and is not an empty folder; unpack into a new folder (nothing is overwritten)")
    if not bundle.is_file():
        raise InputError(f"{where}: no such file; give the path of the bundle `make bundle` wrote")
    if not trusted:
        raise InputError(f"{where}: no trusted key given: set TRUSTED_KEY=<public key file of the signer> (its .pub); a bundle is never unpacked unverified")
    keys = [load_public(path) for path in trusted]
    actual = sha256_file(bundle)
    say(f"bundle: sha256 {actual}")
    if expected_sha256 is not None and expected_sha256.strip().lower() != actual:
        raise InputError(f"{where}: has sha256 {actual}, expected {expected_sha256.strip()}; refusing it: {AGAIN}")
    into.parent.mkdir(parents=True, exist_ok=True)
    staging: Path | None = None
    try:
        with tarfile.open(bundle, mode="r|*") as archive:
            sums_member = archive.next()
            if sums_member is None or sums_member.name != SUMS:
                raise InputError(f"{where}: does not begin with {SUMS}; not a bundle made by `make bundle` (or an old, unsigned one); refusing it")
            sums = _read_member(archive, sums_member, MAX_SUMS_BYTES, where)
            signature_member = archive.next()
            if signature_member is None or signature_member.name != SIGNATURE:
                raise InputError(f"{where}: is not signed (no {SIGNATURE} after {SUMS}); refusing it: make it with `make bundle SIGNING_KEY=...`")
            signer = verify(sums, _read_member(archive, signature_member, 64 * 1024, where), keys, where)
            expected = parse_sums(sums, where)
            say(f"bundle: signature by {signer} verified; {len(expected)} files listed")
            staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.unpack-", dir=into.parent))
            seen = _extract_checked(archive, expected, staging, where, (sums_member, signature_member))
        missing = sorted(set(expected) - seen)
        if missing:
            raise InputError(*(f"{where}: {SUMS} lists {path}, which the bundle lacks; the bundle is incomplete: {AGAIN}" for path in missing[:20]))
        _check_contents(staging, bundle)
        staging.chmod(0o755)  # mkdtemp makes it private; the unpacked folder is an ordinary one
        if into.exists():
            into.rmdir()  # checked empty above
        staging.rename(into)
        staging = None
        return tuple(sorted(seen | {SUMS, SIGNATURE}))
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputError(f"{where}: not a tar or damaged ({error}); {AGAIN}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _extract_checked(archive: tarfile.TarFile, expected: dict[str, str], staging: Path, where: str,
                     read: tuple[tarfile.TarInfo, ...]) -> set[str]:
    """Stream every remaining entry into staging, each checked against SHA256SUMS; InputError at the first that is not right."""
    seen: set[str] = set()
    for count, member in enumerate(archive, start=1):
        if any(member is done for done in read):
            continue  # iterating a TarFile yields the entries already read first
        if count > MAX_MEMBERS:
            raise InputError(f"{where}: more than {MAX_MEMBERS} entries; this is not a bundle made by `make bundle`")
        path = _safe_path(member.name)
        if path is None:
            raise InputError(f"{where}: entry {member.name!r} points outside the bundle folder (absolute or '..'); refusing the bundle: {AGAIN}")
        if member.isdir():
            continue
        if not member.isfile():
            kind = "a link" if member.issym() or member.islnk() else "not a regular file"
            raise InputError(f"{where}: entry {member.name!r} is {kind}; a bundle holds regular files only; refusing the bundle: {AGAIN}")
        if path in seen:
            raise InputError(f"{where}: entry {path!r} appears twice; refusing the bundle: {AGAIN}")
        if path not in expected:
            raise InputError(f"{where}: {path} is not listed in {SUMS}; a file was added after the bundle was signed: {AGAIN}")
        target = staging / path
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        source = archive.extractfile(member)
        with target.open("wb") as out:
            while source is not None and (block := source.read(1 << 20)):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != expected[path]:
            raise InputError(f"{where}: {path} has sha256 {digest.hexdigest()}, {SUMS} expects {expected[path]}; the file was altered: {AGAIN}")
        target.chmod(0o644)
        seen.add(path)
    return seen


def _check_contents(staging: Path, bundle: Path) -> None:
    """The image layout holds exactly the locked images with all their blobs; the charts verify."""
    where = f"bundle {bundle}"
    locks = sorted((staging / "images").glob("*.lock.yaml")) if (staging / "images").is_dir() else []
    images = [image for lock in locks for image in load_images_lock(lock).images]
    unfetched = [i.reference for i in images if not i.digest]
    if unfetched:
        raise InputError(*(f"{where}: its images lock has no digest for {ref}: the bundle does not carry it; make the bundle again" for ref in unfetched))
    if images or (staging / LAYOUT).exists():
        problems = check_layout(staging / LAYOUT, {str(i.digest): i.reference for i in images})
        if problems:
            raise InputError(*(f"{where}: {p.replace(str(staging) + '/', '')}" for p in problems))
    if (staging / CHARTS / DECLARED_FILE).is_file():
        try:
            verify_lock(staging / CHARTS)
        except InputError as error:
            raise InputError(*(f"{where}: its charts do not verify: {p}" for p in error.problems)) from None


# --- the push of an unpacked bundle ----------------------------------------------------

def bundle_lock(unpacked: Path) -> ImagesLock:
    """The images lock of an unpacked bundle."""
    locks = sorted((unpacked / "images").glob("*.lock.yaml"))
    if len(locks) != 1:
        raise InputError(f"{unpacked}: needs exactly one images/<stack>.lock.yaml; give the folder `make unbundle` unpacked")
    return load_images_lock(locks[0])


def push_images(source: Path, registry: str, trusted: list[Path], ca_file: str | None, username_env: str, password_env: str,
                say: Callable[[str], None] = print) -> tuple[int, int]:
    """Push the images of an unpacked bundle (or of a bundle file, verified and unpacked to a temporary folder); (pushed, skipped)."""
    registry = check_registry(registry, "REGISTRY")
    scratch: Path | None = None
    try:
        if source.is_file():
            scratch = Path(tempfile.mkdtemp(prefix=".images-push-", dir=source.parent))
            unpack(source, scratch / "bundle", trusted, say=say)
            source = scratch / "bundle"
        lock = bundle_lock(source)
        access = crane_cli.RegistryAccess(registry.split("/", 1)[0], username_env if os.environ.get(username_env) else None,
                                            password_env if os.environ.get(username_env) else None, ca_file)
        with crane_cli.session() as crane:
            report = push(source / LAYOUT, lock, registry, crane, access, say)
        return len(report.pushed), len(report.skipped)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
