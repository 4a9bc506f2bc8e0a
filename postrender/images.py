"""The air-gap rewrite: every image moved to the site registry and pinned to the digest in the stack's images lock.

Every place `model.images.image_fields` finds in a post-rendered object is
rewritten: container images, image-named arguments and env values, words of
free text (container args, ConfigMap data, custom resource fields) and
triples. The registry host is replaced and the path and tag kept (a Docker
Hub short name gets its ``library/`` prefix: ``nginx:1.27`` ->
``<registry>/library/nginx:1.27``), as Zarf's image mutation does, and the
digest the lock records is appended (``<registry>/library/nginx:1.27@sha256:...``).
A triple gets its ``registry`` (or the host part of its ``repository``)
replaced and the digest in its ``digest`` field, or in ``version`` for
gpu-operator's ``{repository, image, version}`` (which takes ``sha256:...``
there); a triple with neither keeps its tag. Annotations are documentation
and are left alone. An image the lock does not hold, or holds without a
digest, is refused by name: the bundle would not carry it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from model.images import ImageField, Reference, get_at, image_fields, object_text, parse_reference, set_at
from model.images_lock import ImagesLock, site_key


def pin_images(objects: list[Any], lock: ImagesLock, registry: str, lock_file: str, release: str = "") -> tuple[list[Any], list[str]]:
    """(objects with every image moved and pinned, problems naming each image the lock cannot pin).

    A field is looked up by where `make images` found it (`<release>: <object> <field>`
    in the lock's foundIn: this covers fields whose tag the software fills in or
    replaces, see catalog/runtime-images.yaml), else by the image it names.
    """
    known = lock.by_site_key()
    located = {where: image for image in lock.images for where in image.found_in}
    problems: list[str] = []
    result = []
    for obj in objects:
        if not isinstance(obj, Mapping):
            result.append(obj)
            continue
        fields = [f for f in image_fields(obj) if f.path[:2] != ("metadata", "annotations")]
        if not fields:
            result.append(obj)
            continue
        changed = copy.deepcopy(dict(obj))
        # Right to left inside one string, so earlier words keep their offsets.
        for field in sorted(fields, key=lambda f: (f.path_text(), -f.start)):
            where = f"{object_text(obj)} {field.path_text()}"
            entry = located.get(f"{release}: {where}")
            site = parse_reference(lock.site_reference(entry)) if entry else None
            if entry is None and field.reference is not None:
                site = field.reference if str(field.reference).startswith(registry + "/") else field.reference.at(registry)
                entry = known.get(site_key(str(site)))
            if entry is None or site is None:
                shown = field.text if field.reference is not None else f"{field.unknown}, whose tag the software fills in,"
                problems.append(f"{where}: image {shown} is not in {lock_file}; run `make images` then `make bundle` for this stack")
                continue
            if not entry.digest:
                problems.append(f"{where}: image {entry.reference} has no digest in {lock_file}; run `make bundle` (it fetches the image and records its digest)")
                continue
            if site.digest and site.digest != entry.digest:
                problems.append(f"{where}: image {field.text} names digest {site.digest}, {lock_file} records {entry.digest} for it")
                continue
            _rewrite(changed, field, site.pinned(entry.digest), registry)
        result.append(changed)
    return result, problems


def _rewrite(obj: dict[str, Any], field: ImageField, pinned: Reference, registry: str) -> None:
    if field.form == "triple":
        node = get_at(obj, field.path)
        image = node.get("image") if isinstance(node.get("image"), str) and "repository" in node else None
        path = pinned.path[: -len(image) - 1] if image and pinned.path.endswith("/" + image) else pinned.path
        if "registry" in node:
            node["registry"] = registry
            node["repository"] = path.removeprefix(registry.partition("/")[2] + "/") if "/" in registry else path
        else:
            node["repository"] = f"{pinned.domain}/{path}"
        if "digest" in node:
            node["digest"] = pinned.digest
        elif image:
            # gpu-operator's operands: a `version` of sha256:... is pulled as repository/image@version, exactly these bytes.
            node["version"] = pinned.digest
        return
    text = get_at(obj, field.path)
    new = str(pinned)
    if field.form == "named" and field.start == 0 and text.strip() != field.text.strip():
        # Completed by a sibling `tag`/`version`: only the name can move, the software appends the tag.
        set_at(obj, field.path, pinned.name)
    elif field.form == "container" or (field.form == "named" and field.start == 0):
        set_at(obj, field.path, new)
    else:
        set_at(obj, field.path, text[: field.start] + new + text[field.start + len(field.text):])
