"""The post-render of one manifest stream: kustomize patches, then the registry move and digest pin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from model.errors import InputError
from model.images_lock import load_images_lock
from postrender.images import pin_images
from postrender.kustomize import PatchSet, apply_patches

SEPARATOR = re.compile(r"^---[ \t]*(#.*)?$")


def split_documents(text: str) -> list[str]:
    """A manifest stream cut at its '---' lines (each chunk without the separator); empty chunks dropped."""
    chunks: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if SEPARATOR.match(line.rstrip("\r\n")):
            chunks.append([])
        else:
            chunks[-1].append(line)
    return ["".join(c) for c in chunks if "".join(c).strip() and any(
        line.strip() and not line.lstrip().startswith("#") for line in c)]


def _parse(chunks: list[str]) -> list[Any]:
    docs = []
    for index, chunk in enumerate(chunks):
        try:
            parsed = [d for d in yaml.safe_load_all(chunk) if d is not None]
        except yaml.YAMLError as error:
            raise InputError(f"rendered document {index + 1} is not valid YAML: {error}") from None
        if len(parsed) > 1:
            raise InputError(f"rendered document {index + 1} holds {len(parsed)} objects where one was expected")
        docs.append(parsed[0] if parsed else None)
    return docs


def post_render(text: str, root: Path, patches: PatchSet | None, registry: str | None, lock_file: str | None, release: str = "") -> str:
    """The manifests Helm installs: patches applied by kustomize, then every image moved and pinned.

    Documents the image step does not change are written back as they came;
    InputError lists every refused patch or image.
    """
    if patches:
        text = apply_patches(text, patches, root)
    if not registry:
        return text
    if not lock_file:
        raise InputError(f"images move to {registry} but no images lock was given; run the preview again")
    lock = load_images_lock(root / lock_file)
    if lock.registry != registry:
        raise InputError(f"{lock_file} was made for registry {lock.registry!r}, the stack sets {registry!r}; run `make images` and `make bundle` again")
    chunks = split_documents(text)
    docs = _parse(chunks)
    pinned, problems = pin_images(docs, lock, registry, lock_file, release)
    if problems:
        raise InputError(*problems)
    out = []
    for chunk, before, after in zip(chunks, docs, pinned, strict=True):
        if before == after:
            out.append(chunk if chunk.endswith("\n") else chunk + "\n")
        else:
            # Keep the chunk's leading comments (Helm's `# Source:` line); the object is written anew.
            head = []
            for line in chunk.splitlines(keepends=True):
                if line.strip() and not line.lstrip().startswith("#"):
                    break
                head.append(line if line.endswith("\n") else line + "\n")
            out.append("".join(head) + yaml.safe_dump(after, sort_keys=False, allow_unicode=True, width=1 << 30))
    return "".join(f"---\n{chunk}" for chunk in out)
