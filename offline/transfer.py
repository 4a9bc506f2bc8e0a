"""Images of an offline bundle: fetched by digest into an OCI layout, and pushed from it to the site registry.

fetch: every image of the stack's images lock is resolved at its source
registry (or the mirror the mirrors file maps that registry to, as
containerd's registry mirrors do), pulled by digest with crane and laid
into one OCI layout (shared blobs). A multi-architecture index keeps the
platforms the site declares (`astrago-deploy:offline.platforms`, default
linux/amd64): when it holds exactly those it is kept as published (same
digest), otherwise the bundle carries an index of the declared platforms'
images, written here, whose digest is the one recorded and deployed (the
upstream index digest is recorded beside it). Images a previous bundle's
layout already holds (`--reuse`) are taken from there, not fetched.

push: every image of an unpacked bundle goes to the site registry under the
reference the post-render gives it (`<registry>/<path>:<tag>`), skipping
those the registry already holds by digest (a push that stopped halfway
resumes), and every digest is checked afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cli.crane import Crane, RegistryAccess
from model.errors import InputError
from model.images import parse_reference
from model.images_lock import ImagesLock, LockedImage, load_images_lock
from model.oci_layout import (
    OCI_INDEX,
    Descriptor,
    add_blob,
    copy_blobs,
    init_layout,
    is_index,
    platform_name,
    platforms_of,
    read_index,
    required_blobs,
    single_image_view,
    write_index,
)

DEFAULT_PLATFORMS = ("linux/amd64",)
MIRROR_KEYS = {"endpoint", "usernameEnv", "passwordEnv", "caFile"}
ANY_REGISTRY = "*"


# --- mirrors ----------------------------------------------------------------------

@dataclass(frozen=True)
class Mirrors:
    """Where each upstream registry is pulled from (registry -> endpoint host[:port][/prefix])."""

    by_registry: dict[str, RegistryAccess] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)

    def source(self, reference: str) -> tuple[str, RegistryAccess | None]:
        """The reference to pull (mirror applied, Docker Hub names made full) and the access for it."""
        parsed = parse_reference(reference)
        if parsed is None:
            raise InputError(f"image {reference!r} is not an image reference")
        key = parsed.domain if parsed.domain in self.by_registry else ANY_REGISTRY
        access = self.by_registry.get(key)
        if access is None:
            return str(parsed), None
        return str(parsed.at(self.prefixes[key])), access


def load_mirrors(path: Path | None) -> Mirrors:
    """The mirrors file: {mirrors: {<registry or *>: {endpoint, usernameEnv?, passwordEnv?, caFile?}}}."""
    if path is None:
        return Mirrors()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"{path}: cannot read the mirrors file ({error})") from None
    raw = data.get("mirrors") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: needs `mirrors: {{<registry>: {{endpoint: host[:port][/prefix]}}}}`")
    by_registry: dict[str, RegistryAccess] = {}
    prefixes: dict[str, str] = {}
    for registry, entry in raw.items():
        where = f"{path}: mirrors.{registry}"
        if not isinstance(entry, dict) or not isinstance(entry.get("endpoint"), str) or set(entry) - MIRROR_KEYS:
            raise InputError(f"{where}: needs endpoint (host[:port][/prefix]) and may have {sorted(MIRROR_KEYS - {'endpoint'})}")
        endpoint = entry["endpoint"].removeprefix("https://").removeprefix("http://").rstrip("/")
        host = endpoint.split("/", 1)[0]
        by_registry[str(registry)] = RegistryAccess(host, entry.get("usernameEnv"), entry.get("passwordEnv"), entry.get("caFile"))
        prefixes[str(registry)] = endpoint
    return Mirrors(by_registry, prefixes)


# --- fetch ------------------------------------------------------------------------

def reusable(paths: list[Path], platforms: tuple[str, ...]) -> dict[str, tuple[Path, Descriptor]]:
    """digest -> (layout, descriptor) of every image the given layouts (or unpacked bundles) hold.

    For an unpacked bundle made for the same site platforms, an image cut
    down from a multi-arch index is found by its upstream digest too.
    """
    found: dict[str, tuple[Path, Descriptor]] = {}
    for path in paths:
        layout = path / "images" / "oci" if (path / "images" / "oci").is_dir() else path
        if not (layout / "index.json").is_file():
            raise InputError(f"--reuse {path}: neither an OCI image layout nor an unpacked bundle (no index.json)")
        held = {d.digest: d for d in read_index(layout)}
        for digest, descriptor in held.items():
            found[digest] = (layout, descriptor)
        for lock in sorted((path / "images").glob("*.lock.yaml")) if (path / "images").is_dir() else []:
            for image in load_images_lock(lock).images:
                # A cut index is the same one again only for the same platforms.
                if image.source_digest and image.digest in held and image.platforms == platforms:
                    found.setdefault(image.source_digest, (layout, held[image.digest]))
    return found


def fetch(lock: ImagesLock, layout: Path, crane: Crane, mirrors: Mirrors, platforms: tuple[str, ...],
          reuse: dict[str, tuple[Path, Descriptor]], say: Callable[[str], None]) -> ImagesLock:
    """Put every image of the lock into the layout by digest; return the lock with each image's digest, size and platforms."""
    init_layout(layout)
    for access in {a.host: a for a in mirrors.by_registry.values()}.values():
        crane.login(access, "mirrors")
    descriptors: dict[str, Descriptor] = {}
    scratch = Path(tempfile.mkdtemp(prefix=".pull-", dir=layout.parent))
    try:
        for number, image in enumerate(lock.images):
            reference = image.reference
            source, _ = mirrors.source(reference)
            where = f"image {reference} ({', '.join(image.releases)}) from {source}"
            name, _, pinned = source.partition("@")
            digest = pinned or crane.digest(source, where)
            repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            if digest in reuse:
                old_layout, old = reuse[digest]
                needed = required_blobs(old_layout, old.digest, old.size)
                copy_blobs(old_layout, layout, needed)
                kept = Descriptor(old.media_type, old.digest, old.size, reference)
                say(f"images: {reference}: reused from {old_layout} ({sum(needed.values())} bytes)")
            else:
                kept = _pull(f"{repository}@{digest}", reference, layout, scratch / str(number), crane, platforms, where)
                say(f"images: {reference}: fetched {kept.digest}")
            needed = required_blobs(layout, kept.digest, kept.size)
            held = tuple(platforms_of(layout, kept.digest))
            if held and not set(held) & set(platforms):
                raise InputError(f"{where}: is built for {list(held)} only, and the site's nodes run {list(platforms)} "
                                 "(astrago-deploy:offline.platforms); use an image for the site's platform")
            descriptors[kept.digest] = kept
            lock = lock.with_fetched(reference, digest=kept.digest, size=sum(needed.values()), platforms=held,
                                     source_digest=digest if digest != kept.digest else None)
        write_index(layout, list(descriptors.values()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return lock


def _pull(source: str, reference: str, layout: Path, scratch: Path, crane: Crane, platforms: tuple[str, ...], where: str) -> Descriptor:
    """Pull source@digest into the shared layout; an index keeps the site's platforms (its children pulled one by one)."""
    repository, _, digest = source.partition("@")
    raw = crane.manifest_bytes(source, where)
    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        raise InputError(f"{where}: the registry served a manifest whose sha256 is not {digest}; refusing it")
    manifest = crane.parse_manifest(raw, where)
    if not is_index(manifest):
        return _pull_one(source, reference, layout, scratch, crane, where)
    children = [m for m in manifest.get("manifests") or [] if isinstance(m, dict)]
    kept = [m for m in children if platform_name(m.get("platform") or {}) in platforms]
    if not kept:
        offered = sorted({platform_name(m.get("platform") or {}) for m in children})
        raise InputError(f"{where}: has none of the site's platforms {list(platforms)}; it offers {offered}. "
                         "Set astrago-deploy:offline.platforms to what the site's nodes run")
    for number, child in enumerate(kept):
        _pull_one(f"{repository}@{child['digest']}", reference, layout, scratch.with_name(f"{scratch.name}-{number}"), crane, where)
    media_type = str(manifest.get("mediaType") or OCI_INDEX)
    if len(kept) == len(children):
        return Descriptor(media_type, add_blob(layout, raw), len(raw), reference)  # as published: same digest
    cut = {key: value for key, value in manifest.items() if key != "manifests"}
    cut["manifests"] = kept
    cut["mediaType"] = media_type
    data = json.dumps(cut, separators=(",", ":")).encode()
    return Descriptor(media_type, add_blob(layout, data), len(data), reference)


def _pull_one(source: str, reference: str, layout: Path, scratch: Path, crane: Crane, where: str) -> Descriptor:
    """crane pull into a scratch layout, then move its blobs into the shared one."""
    crane.pull_layout(source, scratch, where)
    pulled = read_index(scratch)
    if len(pulled) != 1:
        raise InputError(f"{where}: crane pulled {len(pulled)} entries instead of one")
    expected = source.partition("@")[2]
    if expected and pulled[0].digest != expected:
        raise InputError(f"{where}: the registry served {pulled[0].digest} for {expected}; refusing it")
    copy_blobs(scratch, layout, required_blobs(scratch, pulled[0].digest, pulled[0].size))
    shutil.rmtree(scratch, ignore_errors=True)
    return Descriptor(pulled[0].media_type, pulled[0].digest, pulled[0].size, reference)


# --- push -------------------------------------------------------------------------

@dataclass(frozen=True)
class PushReport:
    pushed: tuple[str, ...]
    skipped: tuple[str, ...]


def push(layout: Path, lock: ImagesLock, registry: str, crane: Crane, access: RegistryAccess,
         say: Callable[[str], None]) -> PushReport:
    """Push every image to registry (skipping digests it holds), then check every digest is there."""
    crane.login(access, f"registry {registry}")
    descriptors = {d.digest: d for d in read_index(layout)}
    pushed: list[str] = []
    skipped: list[str] = []
    views = Path(tempfile.mkdtemp(prefix="astrago-push-"))
    try:
        for number, image in enumerate(lock.images):
            target = site_reference(image, registry)
            where = f"image {image.reference} -> {target}"
            if not image.digest or image.digest not in descriptors:
                raise InputError(f"{where}: the bundle's image layout lacks it ({image.digest or 'no digest in the lock'})")
            if crane.present(f"{_repository(target)}@{image.digest}", where):
                skipped.append(image.reference)
                continue
            view = single_image_view(layout, descriptors[image.digest], views / str(number))
            got = crane.push_layout(view, target, where)
            if got != image.digest:
                raise InputError(f"{where}: the registry stored {got}, the bundle holds {image.digest}")
            pushed.append(image.reference)
            say(f"images-push: {target}@{image.digest}")
    finally:
        shutil.rmtree(views, ignore_errors=True)
    missing = [f"{_repository(site_reference(i, registry))}@{i.digest}" for i in lock.images
               if not crane.present(f"{_repository(site_reference(i, registry))}@{i.digest}", f"registry {registry}")]
    if missing:
        raise InputError(*(f"registry {registry}: {ref} is not there after the push; run `make images-push` again" for ref in missing))
    return PushReport(tuple(pushed), tuple(skipped))


def site_reference(image: LockedImage, registry: str) -> str:
    """Where the site registry holds the image: the post-render's move (same path and tag), by tag; the digest goes beside it."""
    parsed = parse_reference(image.reference)
    if parsed is None:
        raise InputError(f"image {image.reference!r} is not an image reference")
    moved = parsed if image.reference.startswith(registry + "/") else parsed.at(registry)
    tag = moved.tag or (image.digest or "sha256:unknown").removeprefix("sha256:")[:16]
    return f"{moved.name}:{tag}"


def _repository(reference: str) -> str:
    name = reference.partition("@")[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.partition(':')[0]}"
