"""Post-render patches of a release: read, check and apply them (plain functions).

An upstream chart is upgraded by changing its version, never by editing it:
what the team needs changed in its output is kept as patches under
``charts/patches/<release>/`` and applied to the manifests Helm renders
(Helm's post-renderer, see `model.postrender`). A release opts in with
``patches: true`` in the catalog; the folder and the flag must agree.

Every ``*.yaml`` / ``*.yml`` file of the folder is applied in file-name order,
and inside a file document by document. A document is one of (kustomize's two
kinds of patch):

- **JSON 6902**: ``{target: {group, version, kind, name, namespace}, patch: [ops]}``.
  The target selects objects like kustomize's ``patches[].target``: each given
  field must match (``kind``, ``name`` and ``namespace`` as whole-string regular
  expressions, ``group`` and ``version`` exactly; the core group is ``""``); an
  object without a namespace is in the release's. ``patch`` is a list of RFC 6902
  operations: add, remove, replace, move, copy, test.
- **Strategic merge**: a partial object with ``apiVersion``, ``kind`` and
  ``metadata.name`` (``metadata.namespace`` optional) merged into the rendered
  object of that identity. The subset of Kubernetes' strategic merge supported:
  maps merge key by key; ``null`` deletes a key; ``$patch: replace`` in a map
  replaces it and ``$patch: delete`` removes it; lists of maps merge item by item
  on a merge key when every item of both lists has it (``volumeMounts`` on
  ``mountPath``, ``ports`` on ``containerPort`` then ``port``, every other list on
  ``name``; an item with ``$patch: delete`` removes its match); any other list is
  replaced whole. Other ``$`` directives are refused.

A patch that matches no rendered object, or an operation on a path that does
not exist, fails the render with the file and the reason.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model.charts import chart_digest
from model.errors import InputError

PATCHES_DIR = Path("charts/patches")
PATCH_SUFFIXES = (".yaml", ".yml")
JSON6902_OPS = ("add", "remove", "replace", "move", "copy", "test")
TARGET_KEYS = ("group", "version", "kind", "name", "namespace")
# Fields of an operation besides `op`, per operation (RFC 6902 section 4).
OP_FIELDS = {"add": {"path", "value"}, "remove": {"path"}, "replace": {"path", "value"},
             "move": {"path", "from"}, "copy": {"path", "from"}, "test": {"path", "value"}}
MERGE_DIRECTIVES = ("replace", "delete", "merge")
# Kubernetes' merge keys that are not `name` (tried in order; `name` for every other list).
MERGE_KEYS = {"volumeMounts": ("mountPath",), "ports": ("containerPort", "port", "name")}


@dataclass(frozen=True)
class Target:
    """Which rendered objects a JSON 6902 patch applies to; None matches anything."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def matches(self, doc: dict[str, Any], default_namespace: str) -> bool:
        group, version = split_api_version(str(doc.get("apiVersion", "")))
        metadata = doc.get("metadata") or {}
        namespace = str(metadata.get("namespace") or default_namespace)
        return (
            (self.group is None or self.group == group)
            and (self.version is None or self.version == version)
            and (self.kind is None or re.fullmatch(self.kind, str(doc.get("kind", ""))) is not None)
            and (self.name is None or re.fullmatch(self.name, str(metadata.get("name", ""))) is not None)
            and (self.namespace is None or re.fullmatch(self.namespace, namespace) is not None)
        )

    def describe(self) -> str:
        return "{" + ", ".join(f"{k}: {getattr(self, k)!r}" for k in TARGET_KEYS if getattr(self, k) is not None) + "}"


@dataclass(frozen=True)
class JsonPatch:
    """A JSON 6902 patch: RFC 6902 operations on the objects a target selects."""

    source: str
    """File (and document) it came from, for messages."""
    target: Target
    ops: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class MergePatch:
    """A strategic merge patch: a partial object merged into the object of its identity."""

    source: str
    body: dict[str, Any]

    def matches(self, doc: dict[str, Any], default_namespace: str) -> bool:
        mine, theirs = self.body["metadata"], doc.get("metadata") or {}
        return (
            doc.get("apiVersion") == self.body["apiVersion"] and doc.get("kind") == self.body["kind"]
            and theirs.get("name") == mine["name"]
            and ("namespace" not in mine or str(theirs.get("namespace") or default_namespace) == mine["namespace"])
        )

    def describe(self) -> str:
        return f"{self.body['kind']}/{self.body['metadata']['name']} ({self.body['apiVersion']})"


Patch = JsonPatch | MergePatch


@dataclass(frozen=True)
class PatchSet:
    """A release's checked patches."""

    folder: str
    """charts/patches/<release>, relative to the project root."""
    files: tuple[str, ...]
    """Patch files in the order they apply, relative to the project root."""
    digest: str
    """sha256 over the folder's files: any edit changes it."""
    patches: tuple[Patch, ...]


def split_api_version(api_version: str) -> tuple[str, str]:
    """'apps/v1' -> ('apps', 'v1'); 'v1' -> ('', 'v1')."""
    group, _, version = api_version.rpartition("/")
    return group, version


def patch_files(folder: Path) -> list[Path]:
    """The files of a patch folder in the order they apply (hidden files are ignored)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def check_patch_folders(root: Path, releases: Iterable[str]) -> list[str]:
    """Problems with folders under charts/patches that name no catalog release (a typo would be silently ignored)."""
    base = root / PATCHES_DIR
    if not base.is_dir():
        return []
    known = set(releases)
    return [
        f"{PATCHES_DIR / entry.name}/ names no release of catalog/releases.yaml; rename it to the release it patches (known: {sorted(known)})"
        for entry in sorted(base.iterdir()) if entry.is_dir() and not entry.name.startswith(".") and entry.name not in known
    ]


def release_patches(root: Path, release: str, declared: bool) -> PatchSet | None:
    """Check a release's patch folder against its catalog flag and every patch's syntax.

    Returns None for a release without patches; raises InputError naming each
    bad file and what is wrong with it.
    """
    folder = PATCHES_DIR / release
    files = patch_files(root / folder)
    nested = sorted(p.name for p in (root / folder).iterdir() if p.is_dir()) if (root / folder).is_dir() else []
    if nested:
        raise InputError(f"{folder}/ holds folder(s) {nested}; patch files sit directly in the release's folder (they apply in file-name order)")
    if declared and not files:
        raise InputError(f"catalog/releases.yaml: release {release!r} sets `patches: true` but {folder}/ holds no patch file; add one or remove `patches: true`")
    if not declared:
        if files:
            raise InputError(f"{folder}/ holds patches but release {release!r} does not set `patches: true` in catalog/releases.yaml; set it so they are applied (or remove the folder)")
        return None
    patches = load_patches(root, files)
    return PatchSet(
        folder=folder.as_posix(), files=tuple(f.relative_to(root).as_posix() for f in files),
        digest=chart_digest(root / folder), patches=patches,
    )


def load_patches(root: Path, files: Sequence[Path]) -> tuple[Patch, ...]:
    """Parse and check patch files; raise InputError listing every problem, each naming its file."""
    patches: list[Patch] = []
    problems: list[str] = []
    for file in files:
        name = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
        if file.suffix not in PATCH_SUFFIXES:
            problems.append(f"{name}: a patch file must end in .yaml or .yml; rename it (or remove it from the folder)")
            continue
        try:
            documents = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        except yaml.YAMLError as error:
            problems.append(f"{name}: not valid YAML: {error}")
            continue
        if not documents:
            problems.append(f"{name}: holds no patch; remove the file or write a patch in it")
        for index, document in enumerate(documents):
            source = name if len(documents) == 1 else f"{name} (document {index + 1})"
            try:
                patches.append(parse_patch(document, source))
            except InputError as error:
                problems.extend(error.problems)
    if problems:
        raise InputError(*problems)
    return tuple(patches)


def parse_patch(document: Any, source: str) -> Patch:
    """One patch document: a JSON 6902 patch ({target, patch}) or a strategic merge patch (an object)."""
    if isinstance(document, dict) and "target" in document:
        return _parse_json6902(document, source)
    if isinstance(document, dict) and "kind" in document:
        return _parse_merge(document, source)
    raise InputError(
        f"{source}: not a patch; write either a JSON 6902 patch `{{target: {{kind, name, ...}}, patch: [{{op, path, value}}, ...]}}` "
        "or a strategic merge patch (an object with apiVersion, kind and metadata.name)"
    )


def _parse_json6902(document: dict[str, Any], source: str) -> JsonPatch:
    extra = set(document) - {"target", "patch"}
    if extra:
        raise InputError(f"{source}: unknown key(s) {sorted(extra)} in a JSON 6902 patch; allowed: ['patch', 'target']")
    raw_target = document["target"]
    if not isinstance(raw_target, dict) or not raw_target:
        raise InputError(f"{source}: `target` must be a map of {list(TARGET_KEYS)}")
    bad = set(raw_target) - set(TARGET_KEYS)
    if bad:
        raise InputError(f"{source}: unknown target key(s) {sorted(bad)}; allowed: {list(TARGET_KEYS)} (label selectors are not supported)")
    for key, value in raw_target.items():
        if not isinstance(value, str):
            raise InputError(f"{source}: target.{key} must be a string, not {value!r}")
        if key in ("kind", "name", "namespace"):
            try:
                re.compile(value)
            except re.error as error:
                raise InputError(f"{source}: target.{key} {value!r} is not a valid regular expression: {error}") from None
    ops = document.get("patch")
    if not isinstance(ops, list) or not ops:
        raise InputError(f"{source}: `patch` must be a non-empty list of RFC 6902 operations ({{op, path, value}})")
    for index, op in enumerate(ops):
        _check_op(op, f"{source}: patch[{index}]")
    return JsonPatch(source=source, target=Target(**raw_target), ops=tuple(ops))


def _check_op(op: Any, where: str) -> None:
    if not isinstance(op, dict) or op.get("op") not in JSON6902_OPS:
        shown = op.get("op") if isinstance(op, dict) else op
        raise InputError(f"{where}: `op` is {shown!r}; allowed: {list(JSON6902_OPS)}")
    wanted = OP_FIELDS[op["op"]]
    missing = wanted - set(op)
    extra = set(op) - wanted - {"op"}
    if missing or extra:
        raise InputError(f"{where}: `{op['op']}` takes {sorted(wanted)}; " + (f"missing {sorted(missing)}" if missing else f"unknown {sorted(extra)}"))
    for key in ("path", "from"):
        if key in op:
            try:
                parse_pointer(op[key])
            except ValueError as error:
                raise InputError(f"{where}: `{key}` {error}") from None
    if op["op"] == "move" and op["path"] != op["from"] and (op["path"] + "/").startswith(op["from"] + "/"):
        raise InputError(f"{where}: cannot move {op['from']} into its own child {op['path']}")


def _parse_merge(document: dict[str, Any], source: str) -> MergePatch:
    metadata = document.get("metadata")
    if not (isinstance(document.get("apiVersion"), str) and isinstance(document.get("kind"), str)
            and isinstance(metadata, dict) and isinstance(metadata.get("name"), str)):
        raise InputError(f"{source}: a strategic merge patch needs apiVersion, kind and metadata.name (strings) naming the object it patches")
    _check_directives(document, source, "")
    return MergePatch(source=source, body=document)


def _check_directives(node: Any, source: str, path: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("$"):
                if key != "$patch":
                    raise InputError(f"{source}: directive {key!r} at {path or '/'} is not supported; only `$patch: replace|delete|merge`")
                if value not in MERGE_DIRECTIVES:
                    raise InputError(f"{source}: `$patch: {value}` at {path or '/'}; allowed: {list(MERGE_DIRECTIVES)}")
            else:
                _check_directives(value, source, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_directives(item, source, f"{path}/{index}")


def parse_pointer(pointer: Any) -> list[str]:
    """RFC 6901: '/a/b~1c' -> ['a', 'b/c']; '' is the whole document."""
    if not isinstance(pointer, str):
        raise ValueError(f"must be a JSON pointer string, not {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} must start with '/' (a JSON pointer such as /spec/replicas)")
    if re.search(r"~(?![01])", pointer):
        raise ValueError(f"{pointer!r} has '~' not followed by 0 or 1 (write ~0 for '~' and ~1 for '/')")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


# --- applying ---------------------------------------------------------------

def object_id(doc: dict[str, Any]) -> str:
    """Kind/name of a rendered object, for messages."""
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def apply_patches(docs: list[Any], patches: Sequence[Patch], namespace: str) -> list[Any]:
    """Apply patches in order to rendered objects (None entries are empty documents, kept).

    Returns new objects; raises InputError naming the patch's file when a patch
    matches nothing or an operation cannot apply.
    """
    result = copy.deepcopy(docs)
    for patch in patches:
        hits = [i for i, doc in enumerate(result) if isinstance(doc, dict) and patch.matches(doc, namespace)] \
            if isinstance(patch, MergePatch) else \
            [i for i, doc in enumerate(result) if isinstance(doc, dict) and patch.target.matches(doc, namespace)]
        if not hits:
            ids = [object_id(d) for d in result if isinstance(d, dict)]
            rendered = (", ".join(ids[:30]) + (f" and {len(ids) - 30} more" if len(ids) > 30 else "")) or "none"
            wanted = patch.describe() if isinstance(patch, MergePatch) else f"target {patch.target.describe()}"
            raise InputError(f"{patch.source}: {wanted} matches no object the chart rendered in namespace {namespace!r}; rendered: {rendered}")
        for i in hits:
            if isinstance(patch, MergePatch):
                result[i] = strategic_merge(result[i], patch.body)
            else:
                result[i] = apply_json6902(result[i], patch.ops, patch.source)
    return result


def apply_json6902(doc: Any, ops: Sequence[dict[str, Any]], source: str = "patch") -> Any:
    """RFC 6902 operations on one object; raises InputError naming source, operation and reason."""
    box: list[Any] = [copy.deepcopy(doc)]  # the document sits in a one-item list so '' (the root) is a path like any other
    for index, op in enumerate(ops):
        try:
            _apply_op(box, op)
        except _OpError as error:
            where = object_id(box[0]) if isinstance(box[0], dict) else "the document"
            raise InputError(f"{source}: patch[{index}] `{op['op']} {op['path']}` on {where}: {error}") from None
    return box[0]


class _OpError(Exception):
    """Why an operation cannot apply."""


def _apply_op(box: list[Any], op: dict[str, Any]) -> None:
    kind, path = op["op"], parse_pointer(op["path"])
    if kind == "add":
        _add(box, path, copy.deepcopy(op["value"]))
    elif kind == "remove":
        _remove(box, path)
    elif kind == "replace":
        parent, key = _parent(box, path)
        _get(parent, key, op["path"])
        _set(parent, key, copy.deepcopy(op["value"]))
    elif kind == "move":
        source = parse_pointer(op["from"])
        value = _lookup(box, source, op["from"])
        _remove(box, source)
        _add(box, path, value)
    elif kind == "copy":
        _add(box, path, copy.deepcopy(_lookup(box, parse_pointer(op["from"]), op["from"])))
    elif kind == "test":
        actual = _lookup(box, path, op["path"])
        if not json_equal(actual, op["value"]):
            raise _OpError(f"test failed: the value is {actual!r}, the patch expects {op['value']!r}")


def _parent(box: list[Any], path: list[str]) -> tuple[Any, str | int]:
    node: Any = box
    tokens: list[str | int] = [0, *path]
    for depth, token in enumerate(tokens[:-1]):
        node = _get(node, token, "/" + "/".join(str(t) for t in tokens[1:depth + 1]))
    return node, tokens[-1]


def _lookup(box: list[Any], path: list[str], shown: str) -> Any:
    parent, key = _parent(box, path)
    return _get(parent, key, shown)


def _get(node: Any, token: str | int, shown: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise _OpError(f"path {shown or '/'} does not exist (no key {token!r}; keys there: {sorted(map(str, node))})")
        return node[token]
    if isinstance(node, list):
        index = _index(node, token, shown, allow_end=False)
        return node[index]
    raise _OpError(f"path {shown or '/'} does not exist (it goes into a {type(node).__name__}, not a map or list)")


def _index(node: list[Any], token: str | int, shown: str, allow_end: bool) -> int:
    if isinstance(token, int):
        return token
    if not re.fullmatch(r"0|[1-9][0-9]*", token):
        raise _OpError(f"path {shown} does not exist ({token!r} is not a list index)")
    index = int(token)
    if index > len(node) or (index == len(node) and not allow_end):
        raise _OpError(f"path {shown} does not exist (index {index}, the list has {len(node)} item(s))")
    return index


def _set(parent: Any, key: str | int, value: Any) -> None:
    if isinstance(parent, dict):
        parent[key] = value
    else:
        parent[_index(parent, key, str(key), allow_end=False)] = value


def _add(box: list[Any], path: list[str], value: Any) -> None:
    if not path:
        box[0] = value  # RFC 6902: adding at the root replaces the whole document
        return
    parent, key = _parent(box, path)
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        else:
            parent.insert(_index(parent, key, "/" + "/".join(path), allow_end=True), value)
    else:
        raise _OpError(f"path {'/' + '/'.join(path)} does not exist (its parent is a {type(parent).__name__}, not a map or list)")


def _remove(box: list[Any], path: list[str]) -> None:
    if not path:
        raise _OpError("cannot remove the whole object")
    parent, key = _parent(box, path)
    _get(parent, key, "/" + "/".join(path))
    if isinstance(parent, dict):
        del parent[key]
    else:
        del parent[_index(parent, key, "", allow_end=False)]


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def strategic_merge(original: Any, patch: Any, field: str = "") -> Any:
    """Merge a strategic merge patch into an object (the subset described in the module docstring)."""
    if isinstance(original, dict) and isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return _strip(patch)
        merged = copy.deepcopy(original)
        for key, value in patch.items():
            if key == "$patch":
                continue
            if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = _strip(value)
        return merged
    if isinstance(original, list) and isinstance(patch, list):
        key = _merge_key(field, original, patch)
        if key is None:
            return _strip(patch)
        merged_list = copy.deepcopy(original)
        for item in patch:
            found = next((i for i, old in enumerate(merged_list) if old.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if found is not None:
                    del merged_list[found]
            elif found is None:
                merged_list.append(_strip(item))
            else:
                merged_list[found] = strategic_merge(merged_list[found], item, key)
        return merged_list
    return _strip(patch)


def _merge_key(field: str, original: list[Any], patch: list[Any]) -> str | None:
    items = [*original, *patch]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in MERGE_KEYS.get(field, ("name",)):
        if all(key in item for item in items):
            return key
    return None


def _strip(value: Any) -> Any:
    """A patch value without its $patch directives (for content added whole)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "$patch" and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)
