"""OCI image layouts (image-spec `image-layout.md`): the images folder of an offline bundle.

A layout is `oci-layout`, `index.json` (one descriptor per image, its
reference in the `org.opencontainers.image.ref.name` annotation) and
`blobs/sha256/<hex>`. These functions read and write it and say which blobs
an image needs (its manifest, or index and every child manifest, configs
and layers), so a bundle can be checked image by image without a registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import InputError

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
REF_NAME = "org.opencontainers.image.ref.name"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")
# Manifests and indexes are small JSON documents; a larger "manifest" is not one.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    """An entry of index.json: one image (or index) of the layout."""

    media_type: str
    digest: str
    size: int
    reference: str

    def as_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, "annotations": {REF_NAME: self.reference}}


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise InputError(f"{layout}: {digest!r} is not a sha256 digest")
    return layout / "blobs" / "sha256" / hexdigest


def init_layout(layout: Path) -> None:
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / LAYOUT_FILE).write_text('{"imageLayoutVersion":"1.0.0"}')
    if not (layout / INDEX_FILE).exists():
        write_index(layout, [])


def write_index(layout: Path, descriptors: list[Descriptor]) -> None:
    """index.json with the descriptors sorted by reference (same images, same bytes)."""
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d.as_dict() for d in sorted(descriptors, key=lambda d: (d.reference, d.digest))]}
    (layout / INDEX_FILE).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def read_index(layout: Path) -> list[Descriptor]:
    """The layout's descriptors; InputError when index.json is not one."""
    path = layout / INDEX_FILE
    try:
        data = json.loads(path.read_text())
        return [Descriptor(m["mediaType"], m["digest"], int(m["size"]), (m.get("annotations") or {}).get(REF_NAME, "")) for m in data["manifests"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not an OCI image layout index (schemaVersion 2 with manifests[])") from None


def read_manifest(layout: Path, digest: str) -> dict[str, Any]:
    path = blob_path(layout, digest)
    if not path.is_file():
        raise InputError(f"{layout}: manifest {digest} is missing from blobs/")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InputError(f"{layout}: manifest {digest} is larger than a manifest can be")
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        raise InputError(f"{layout}: manifest {digest} is not JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{layout}: manifest {digest} is not a JSON object")
    return data


def is_index(manifest: dict[str, Any]) -> bool:
    return manifest.get("mediaType") in INDEX_TYPES or ("manifests" in manifest and "layers" not in manifest)


def required_blobs(layout: Path, digest: str, size: int) -> dict[str, int]:
    """digest -> size of every blob the image (or index) at digest needs, itself included; InputError when a manifest is missing."""
    needed: dict[str, int] = {digest: size}
    manifest = read_manifest(layout, digest)
    if is_index(manifest):
        for child in manifest.get("manifests") or []:
            needed.update(required_blobs(layout, str(child["digest"]), int(child["size"])))
        return needed
    for item in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
        if "digest" in item:
            needed[str(item["digest"])] = int(item.get("size", -1))
    return needed


def platforms_of(layout: Path, digest: str) -> list[str]:
    """os/arch[/variant] of each image an index holds, or of the single image (from its config)."""
    manifest = read_manifest(layout, digest)
    if is_index(manifest):
        return sorted({platform_name(m.get("platform") or {}) for m in manifest.get("manifests") or []})
    config = manifest.get("config") or {}
    if "digest" not in config or not blob_path(layout, str(config["digest"])).is_file():
        return []
    data = json.loads(blob_path(layout, str(config["digest"])).read_bytes() or b"{}")
    return [platform_name(data)] if isinstance(data, dict) and data.get("os") else []


def platform_name(platform: dict[str, Any]) -> str:
    parts = [str(platform.get("os", "unknown")), str(platform.get("architecture", "unknown"))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def add_blob(layout: Path, data: bytes) -> str:
    """Write bytes as a blob; return its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return digest


def copy_blobs(source: Path, target: Path, digests: dict[str, int]) -> None:
    """Bring blobs from one layout into another: a hard link where the file system allows, else a copy."""
    for digest in digests:
        origin, destination = blob_path(source, digest), blob_path(target, digest)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(origin, destination)
        except OSError:
            shutil.copyfile(origin, destination)


def single_image_view(layout: Path, descriptor: Descriptor, into: Path) -> Path:
    """A layout holding only one image of `layout` (its blobs folder a link to the shared one), as `crane push` takes it."""
    into.mkdir(parents=True, exist_ok=True)
    (into / LAYOUT_FILE).write_text('{"imageLayoutVersion":"1.0.0"}')
    write_index(into, [descriptor])
    link = into / "blobs"
    if not link.exists():
        link.symlink_to((layout / "blobs").resolve(), target_is_directory=True)
    return into


def check_layout(layout: Path, expected: dict[str, str]) -> list[str]:
    """Problems of a layout against the images it must hold (digest -> reference): extra or missing images, missing blobs, sizes."""
    problems: list[str] = []
    try:
        descriptors = read_index(layout)
    except InputError as error:
        return list(error.problems)
    listed = {d.digest: d for d in descriptors}
    for descriptor in descriptors:
        if descriptor.digest not in expected:
            problems.append(f"{layout}/{INDEX_FILE}: holds {descriptor.reference or '(no name)'} @ {descriptor.digest}, which the images lock does not list")
    for digest, reference in sorted(expected.items(), key=lambda item: item[1]):
        if digest not in listed:
            problems.append(f"{layout}/{INDEX_FILE}: lacks {reference} @ {digest}, which the images lock lists")
            continue
        try:
            needed = required_blobs(layout, digest, listed[digest].size)
        except InputError as error:
            problems.extend(f"{reference}: {p}" for p in error.problems)
            continue
        for blob, size in sorted(needed.items()):
            path = blob_path(layout, blob)
            if not path.is_file():
                problems.append(f"{reference}: blob {blob} is missing from {layout}/blobs")
            elif size >= 0 and path.stat().st_size != size:
                problems.append(f"{reference}: blob {blob} has {path.stat().st_size} bytes, its manifest says {size}")
    return problems
