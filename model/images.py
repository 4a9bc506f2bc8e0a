"""Image references in rendered manifests (plain functions over parsed objects).

`make images`, the post-render's registry rewrite and digest pin, and the
prod policy all read images here, from the objects Helm renders, never from
values: Helm alone knows how a chart's values become objects.

Where an image is found in an object (`image_fields`), and how much of a
string must look like an image for it to count:

- **container images**: the ``image`` of every item of every ``containers``,
  ``initContainers`` and ``ephemeralContainers`` list at any depth (pods, pod
  templates, CronJob job templates, custom resources embedding pod specs).
  Always an image; without a tag it is ``:latest``, as the runtime reads it.
- **image-named places**: a container argument ``--<flag with "image">=<ref>``,
  an env var whose name contains ``IMAGE``, and a string under a key ``image``
  or ``*Image`` of any map: any valid reference (Docker Hub short names too).
  A sibling ``tag``/``version`` completes an untagged one.
- **triples** (operators' custom resources): a map with ``repository`` and
  ``image`` (gpu-operator's ``{repository, image, version}``, optional
  ``registry``) or with ``repository`` and ``tag``/``version``/``digest``
  (``{registry?, repository, tag}``). An empty or missing version is an
  *unknown tag*: the operator fills it in at run time, so the chart must
  declare the image (catalog/runtime-images.yaml) or the listing fails.
  A map with ``enabled: false`` (a component the operator will not start)
  is not searched for image-named places or triples.
- **any other string** (container args and env, ConfigMap data, annotations,
  custom resource fields): each word (split at blanks, quotes, ``=``, ``,``,
  ``;`` and brackets) that is a *complete* reference with an explicit
  registry host: ``host.domain[:port]/path:tag``, ``localhost[:port]/path:tag``
  or ``...@sha256:<64 hex>``. A word without a host, or without a tag or
  digest, is not an image: ``app.kubernetes.io/name``, ``nginx``, ``8080``,
  ``https://quay.io/x:1`` (a URL) are not listed.

CustomResourceDefinitions are skipped (their schemas describe containers;
they run none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model import schemas
from model.yamlload import load_file

RUNTIME_IMAGES = Path("catalog/runtime-images.yaml")
# In a `replaces` declaration: the tag the rendered field names.
TAG_PLACEHOLDER = "{tag}"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
HOOK_ANNOTATION = "helm.sh/hook"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]{1,5})?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
# Any reference as the distribution library reads it: [domain/]path[:tag][@digest].
REFERENCE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
# Words of free text are cut here; ':' '/' '@' '.' stay inside a word.
_WORD_BREAK = re.compile(r"[\s\"'`=,;()\[\]{}<>|\\]+")
_IMAGE_FLAG = re.compile(r"^--?(?P<flag>[\w.-]*image[\w.-]*)=(?P<value>.+)$", re.IGNORECASE)
DIGEST = re.compile(rf"^{_DIGEST}$")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference, in full form (registry host always given)."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """domain/path, without tag or digest."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def at(self, registry: str) -> Reference:
        """The same image under another registry (host[:port][/prefix]): the path, tag and digest are kept."""
        domain, _, prefix = registry.partition("/")
        return Reference(domain, f"{prefix}/{self.path}" if prefix else self.path, self.tag, self.digest)

    def pinned(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, self.tag, digest)


def parse_reference(text: str) -> Reference | None:
    """A reference in full form, or None when text is not one.

    The first segment is a registry only when it looks like a host (a dot, a
    port or localhost), as container runtimes read it; otherwise the image is on
    Docker Hub, whose one-segment names live under library/. No tag and no
    digest means ``latest``.
    """
    match = REFERENCE.match(text.strip()) if text else None
    if not match:
        return None
    domain, path, tag, digest = match["domain"], match["path"], match["tag"], match["digest"]
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        path, domain = f"{domain}/{path}", None
    if domain is None or domain in DOCKER_HUB:
        domain = "docker.io"
        if "/" not in path:
            path = f"library/{path}"
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain, path, tag, digest)


def canonical(text: str) -> str:
    """A reference in full form (docker.io/library/..., :latest), so equal images compare equal; text itself if it is none."""
    reference = parse_reference(text)
    return str(reference) if reference else text


def strict_reference(word: str) -> Reference | None:
    """A word of free text that is a complete reference: explicit registry host, and a tag or a digest."""
    match = REFERENCE.match(word)
    if not match or not match["domain"] or not (match["tag"] or match["digest"]):
        return None
    domain = match["domain"]
    if not ("." in domain or ":" in domain or domain == "localhost"):
        return None
    return parse_reference(word)


@dataclass(frozen=True)
class ImageField:
    """One place in an object that names an image."""

    path: tuple[str | int, ...]
    """Keys and list indexes from the object's top to the string (or, for a triple, to its map)."""
    text: str
    """The reference as written (for a triple: built from its fields)."""
    reference: Reference | None
    """Parsed in full form; None when its tag is unknown (see `unknown`)."""
    form: str
    """container | named | triple | word."""
    start: int = 0
    """For a word: where it starts in the string."""
    unknown: str | None = None
    """For an image without a known tag: the image's name (registry/path) and why."""

    def path_text(self) -> str:
        return path_text(self.path)


def path_text(path: tuple[str | int, ...]) -> str:
    """('spec', 'containers', 0, 'image') -> 'spec.containers[0].image'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def is_hook(obj: Mapping[str, Any]) -> bool:
    """True for a Helm hook object (which Helm does not pass to a post-renderer)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return isinstance(annotations, Mapping) and HOOK_ANNOTATION in annotations


def image_fields(obj: Mapping[str, Any]) -> list[ImageField]:
    """Every place in one rendered object that names an image (see the module docstring)."""
    if obj.get("kind") == "CustomResourceDefinition":
        return []
    found: list[ImageField] = []
    _walk(obj, (), found, searched=True)
    return found


def _walk(node: Any, path: tuple[str | int, ...], found: list[ImageField], searched: bool) -> None:
    if isinstance(node, Mapping):
        if node.get("enabled") is False:
            searched = False
        triple = _triple(node, path) if searched else None
        if triple:
            found.append(triple)
        for key, value in node.items():
            here = (*path, str(key))
            if key in CONTAINER_LISTS and isinstance(value, list):
                for index, item in enumerate(value):
                    _container(item, (*here, index), found)
                continue
            if triple and key in ("repository", "image", "registry", "tag", "version", "digest"):
                continue
            if isinstance(value, str) and searched and _image_key(key) and "repository" not in node:
                named = _named(value, here, node)
                if named:
                    found.append(named)
                    continue
            _walk(value, here, found, searched)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, (*path, index), found, searched)
    elif isinstance(node, str):
        found.extend(_words(node, path))


def _container(item: Any, path: tuple[str | int, ...], found: list[ImageField]) -> None:
    if not isinstance(item, Mapping):
        return
    for key, value in item.items():
        here = (*path, str(key))
        if key == "image" and isinstance(value, str) and value.strip():
            found.append(ImageField(here, value, parse_reference(value), "container"))
        elif key in ("args", "command") and isinstance(value, list):
            for index, arg in enumerate(value):
                flag = _IMAGE_FLAG.match(arg) if isinstance(arg, str) else None
                reference = parse_reference(flag["value"]) if flag else None
                if flag and reference:
                    found.append(ImageField((*here, index), flag["value"], reference, "named", start=len(arg) - len(flag["value"])))
                elif isinstance(arg, str):
                    found.extend(_words(arg, (*here, index)))
        elif key == "env" and isinstance(value, list):
            for index, var in enumerate(value):
                text = var.get("value") if isinstance(var, Mapping) else None
                if not isinstance(text, str):
                    _walk(var, (*here, index), found, True)
                    continue
                reference = parse_reference(text) if "IMAGE" in str(var.get("name", "")).upper() else None
                if reference:
                    found.append(ImageField((*here, index, "value"), text, reference, "named"))
                else:
                    found.extend(_words(text, (*here, index, "value")))
        else:
            _walk(value, here, found, True)


def _image_key(key: Any) -> bool:
    return isinstance(key, str) and (key == "image" or key.endswith("Image"))


def _scalar(value: Any) -> str:
    return str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""


def _named(value: str, path: tuple[str | int, ...], parent: Mapping[str, Any]) -> ImageField | None:
    """A string under an image-named key; a sibling tag/version completes it."""
    match = REFERENCE.match(value.strip())
    if not match:
        return None
    if match["tag"] or match["digest"]:
        return ImageField(path, value, parse_reference(value), "named")
    for sibling in ("tag", "version"):
        if sibling in parent:
            tag = _scalar(parent[sibling])
            if not tag:
                name = parse_reference(value)
                return ImageField(path, value, None, "named", unknown=f"{name.name if name else value} ({sibling} is empty)")
            return ImageField(path, f"{value}:{tag}", parse_reference(f"{value}:{tag}"), "named")
    return ImageField(path, value, parse_reference(value), "named")


def _triple(node: Mapping[str, Any], path: tuple[str | int, ...]) -> ImageField | None:
    """{registry?, repository, image, version|tag} or {registry?, repository, tag|version|digest} as one image."""
    repository = _scalar(node.get("repository"))
    if not repository or "://" in repository or not isinstance(node.get("repository"), str):
        return None
    image = node.get("image")
    if isinstance(image, str) and image.strip() and REFERENCE.match(image.strip()) and "/" not in image and ":" not in image:
        name = f"{repository.rstrip('/')}/{image.strip()}"
    elif not any(key in node for key in ("tag", "version", "digest")) or isinstance(image, (str, Mapping)):
        return None
    else:
        name = repository
    registry = _scalar(node.get("registry")).rstrip("/")
    if registry:
        name = f"{registry}/{name}"
    version = _scalar(node.get("version")) or _scalar(node.get("tag"))
    digest = _scalar(node.get("digest"))
    if not REFERENCE.match(name):
        return None
    if DIGEST.match(version):
        version, digest = "", version
    if not version and not digest:
        parsed = parse_reference(name)
        where = next((k for k in ("version", "tag") if k in node), "version")
        why = "is empty" if where in node else "is not given"
        return ImageField(path, name, None, "triple", unknown=f"{parsed.name if parsed else name} ({where} {why})")
    text = name + (f":{version}" if version else "") + (f"@{digest}" if digest else "")
    return ImageField(path, text, parse_reference(text), "triple")


def _words(text: str, path: tuple[str | int, ...]) -> Iterator[ImageField]:
    position = 0
    for word in _WORD_BREAK.split(text):
        start = text.find(word, position) if word else position
        position = start + len(word)
        reference = strict_reference(word) if "/" in word else None
        if reference:
            yield ImageField(path, word, reference, "word", start=start)


def get_at(obj: Any, path: tuple[str | int, ...]) -> Any:
    """The value at a path of `image_fields`."""
    for part in path:
        obj = obj[part]
    return obj


def set_at(obj: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


# --- the images of a release ----------------------------------------------------

@dataclass(frozen=True)
class RuntimeImage:
    """An image a chart's software starts at run time, declared in catalog/runtime-images.yaml."""

    reference: str
    """In full form, placeholders filled."""
    why: str
    replaces: bool = False
    """The software runs this instead of what a rendered field names for the same image; `{tag}` in reference is that field's tag
    (gpu-operator runs spec.driver's `<version>-<node OS>`). Listed only where a field names the image."""


@dataclass(frozen=True)
class ImageUse:
    """One image one rendered object (or a declaration) names."""

    reference: str
    """In full form (`canonical`)."""
    where: str
    """`<kind> <namespace/>name <field path>`, or `catalog/runtime-images.yaml (<chart>)`."""
    hook: bool = False
    """Named by a Helm hook object (Helm does not pass those to a post-renderer)."""
    declared: bool = False


def object_text(obj: Mapping[str, Any]) -> str:
    """`Deployment astrago/astrago-core` (no namespace when the manifest names none)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{obj.get('kind')} {namespace + '/' if namespace else ''}{meta.get('name')}"


def release_images(objects: Sequence[Mapping[str, Any]], chart: str, declared: tuple[RuntimeImage, ...],
                   declarations: str = "catalog/runtime-images.yaml") -> tuple[list[ImageUse], list[str]]:
    """(every image the objects name plus the chart's declared runtime images, problems).

    A field whose tag is unknown takes the declared image of the same name
    (without one it is a problem naming the chart and the field); a field
    naming an image a `replaces` declaration covers takes the declared tag.
    """
    by_name: dict[str, str] = {}
    replacing: dict[str, str] = {}
    for image in declared:
        parsed = parse_reference(image.reference.replace(TAG_PLACEHOLDER, "tag"))
        if parsed and image.replaces:
            replacing.setdefault(parsed.name, image.reference)
        elif parsed:
            by_name.setdefault(parsed.name, image.reference)
    uses: list[ImageUse] = []
    problems: list[str] = []
    for obj in objects:
        hook = is_hook(obj)
        for field in image_fields(obj):
            where = f"{object_text(obj)} {field.path_text()}"
            if field.reference is not None and field.reference.name in replacing:
                uses.append(ImageUse(canonical(replacing[field.reference.name].replace(TAG_PLACEHOLDER, field.reference.tag or "latest")), where, hook, declared=True))
                continue
            if field.reference is not None:
                uses.append(ImageUse(str(field.reference), where, hook))
                continue
            name = (field.unknown or "").split(" ", 1)[0]
            if name in by_name:
                uses.append(ImageUse(by_name[name], where, hook, declared=True))
            else:
                problems.append(f"chart {chart!r}: {where} names image {field.unknown} whose tag the chart leaves to its software at run time; "
                                f"declare the image it starts under `{chart}:` in {declarations}")
    uses.extend(ImageUse(image.reference, f"{declarations} ({chart}): {image.why}", declared=True) for image in declared if not image.replaces)
    return uses, problems


def runtime_images(data: Any, chart: str, chart_meta: Mapping[str, Any], where: str = "catalog/runtime-images.yaml") -> tuple[RuntimeImage, ...]:
    """A chart's declared runtime images, `{appVersion}` (else the chart's version) and `{version}` filled from its Chart.yaml.

    data is the file's content, already checked against its schema.
    """
    entries = ((data or {}).get("charts") or {}).get(chart) or []
    out = []
    for index, entry in enumerate(entries):
        text = str(entry["reference"])
        # Without an appVersion Helm's .Chart.AppVersion is empty; the chart's own version is the one fact left.
        fills = {"appVersion": chart_meta.get("appVersion") or chart_meta.get("version"), "version": chart_meta.get("version")}
        for key, value in fills.items():
            text = text.replace("{" + key + "}", str(value or ""))
        replaces = bool(entry.get("replaces", False))
        if TAG_PLACEHOLDER in text and not replaces:
            raise ValueError(f"{where}: charts.{chart}[{index}].reference uses {TAG_PLACEHOLDER}, which only a `replaces: true` declaration has (the rendered field's tag)")
        probe = text.replace(TAG_PLACEHOLDER, "tag")
        reference = parse_reference(probe)
        if reference is None or not REFERENCE.match(probe):
            raise ValueError(f"{where}: charts.{chart}[{index}].reference {entry['reference']!r} gives {text!r}, which is not an image reference (registry/path:tag)")
        out.append(RuntimeImage(text if replaces else str(reference), str(entry["why"]), replaces))
    return tuple(out)


# Artifact Hub's key, Helm's proposed one, and bitnami's (its charts write `annotations.images`).
CHART_IMAGE_ANNOTATIONS = ("artifacthub.io/images", "helm.sh/images", "images")


def annotation_images(chart_meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(reference in full form, annotation) of the images a Chart.yaml lists in its `artifacthub.io/images` / `helm.sh/images` / `images` annotation.

    The annotation is a YAML list of `{name, image}` maps (Artifact Hub's
    format) or of plain references; entries that are no reference are skipped.
    """
    annotations = chart_meta.get("annotations") or {}
    out = []
    for key in CHART_IMAGE_ANNOTATIONS:
        text = annotations.get(key) if isinstance(annotations, Mapping) else None
        if not isinstance(text, str):
            continue
        try:
            entries = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        for entry in entries if isinstance(entries, list) else []:
            raw = entry.get("image") if isinstance(entry, Mapping) else entry
            reference = parse_reference(raw) if isinstance(raw, str) else None
            if reference:
                out.append((str(reference), key))
    return out


def load_runtime_declarations(root: Path) -> dict[str, Any]:
    """catalog/runtime-images.yaml, checked against its schema; InputError naming the file and field."""
    path = root / RUNTIME_IMAGES
    if not path.is_file():
        return {"charts": {}}
    document = load_file(path, source=str(RUNTIME_IMAGES))
    schemas.check("runtime-images", document)
    return dict(document.data)
