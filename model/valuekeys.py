"""Which values keys a chart knows, and the keys a release sets that it does not (with the closest known one).

A chart declares its values in `values.yaml` (each subchart's under the
subchart's name or alias, `global` shared by all) and, where it has one, in
`values.schema.json`. A key is known when its path exists there. Below a map
the chart leaves free-form, anything goes: an empty `{}` or `[]` default,
a `null` or scalar default (the chart takes what it is given), a schema
`additionalProperties`/`patternProperties`, or a schema object without
`properties`. This reads the declarations only; Helm still coalesces the
values when it renders them.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from model.errors import InputError
from model.yamlload import safe_load

FREE = "*"
"""Marker of a free-form map in a key tree: every key below it is known."""
KeyTree = dict[str, Any]
"""Known key -> its subtree (a KeyTree) or FREE."""
# Subcharts nest; deeper than this is not a chart we deploy.
MAX_DEPTH = 5
CHART_FILES = ("Chart.yaml", "values.yaml", "values.schema.json")


def chart_key_tree(chart: Path) -> KeyTree:
    """The known values keys of a chart folder or archive, subcharts and schema included."""
    files = _dir_files(chart) if chart.is_dir() else _archive_files(chart.read_bytes(), str(chart))
    return _tree(files, str(chart), 0)


def unknown_keys(values: Mapping[str, Any], tree: KeyTree, allowed: Iterable[str] = ()) -> list[tuple[str, str | None]]:
    """(dotted path, closest known key at that level or None) for every key in values the tree does not know.

    allowed: dotted paths the chart reads without declaring them (each allows its subtree).
    """
    allow = tuple(allowed)
    found: list[tuple[str, str | None]] = []
    _check(values, tree, "", allow, found)
    return found


def _check(values: Mapping[str, Any], tree: KeyTree, prefix: str, allow: tuple[str, ...], found: list[tuple[str, str | None]]) -> None:
    if FREE in tree:
        return
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if any(path == a or path.startswith(a + ".") for a in allow):
            continue
        if key not in tree:
            close = difflib.get_close_matches(str(key), [str(k) for k in tree], n=1, cutoff=0.6)
            found.append((path, close[0] if close else None))
            continue
        below = tree[key]
        if below != FREE and isinstance(value, Mapping):
            _check(value, below, path, allow, found)


def describe(path: str, suggestion: str | None) -> str:
    """`prometheusSpec.retension: did you mean retention?`"""
    leaf = path.rsplit(".", 1)[-1]
    hint = f"did you mean {suggestion}?" if suggestion else "no key of that name at this level"
    return f"{path}: {hint}" if leaf == path else f"{path} ({leaf}: {hint})"


# --- the tree ------------------------------------------------------------------

def _tree(files: dict[str, bytes], where: str, depth: int) -> KeyTree:
    tree: KeyTree = {"global": FREE}
    _merge(tree, _from_values(_yaml(files.get("values.yaml"), f"{where}/values.yaml")))
    schema = files.get("values.schema.json")
    if schema is not None:
        try:
            node = json.loads(schema)
        except ValueError as error:
            raise InputError(f"{where}/values.schema.json: not valid JSON ({error})") from None
        from_schema = _from_schema(node)
        if from_schema == FREE:
            return {FREE: FREE}
        _merge(tree, from_schema)
    meta = _yaml(files.get("Chart.yaml"), f"{where}/Chart.yaml")
    if depth >= MAX_DEPTH:
        return tree
    aliases: dict[str, list[str]] = {}
    for dependency in meta.get("dependencies") or []:
        if isinstance(dependency, dict) and dependency.get("name"):
            aliases.setdefault(str(dependency["name"]), []).append(str(dependency.get("alias") or dependency["name"]))
            condition = dependency.get("condition")
            for path in str(condition or "").split(","):
                if path.strip():
                    _merge(tree, _path_tree(path.strip()))
    for name, sub in _subcharts(files, where):
        subtree = _tree(sub, f"{where}/charts/{name}", depth + 1)
        for key in aliases.get(name, [name]):
            _merge(tree, {key: subtree})
    if "tags" in meta or any(isinstance(d, dict) and d.get("tags") for d in meta.get("dependencies") or []):
        tree.setdefault("tags", FREE)
    return tree


def _from_values(node: Any) -> Any:
    if not isinstance(node, Mapping) or not node:
        return FREE
    return {str(k): _from_values(v) for k, v in node.items()}


def _from_schema(node: Any) -> Any:
    if not isinstance(node, Mapping):
        return FREE
    if node.get("additionalProperties") not in (None, False) or node.get("patternProperties"):
        return FREE
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        # An object without declared properties (or a scalar) takes what it is given;
        # allOf/anyOf/oneOf alternatives are not walked, so they count as free too.
        return FREE
    return {str(k): _from_schema(v) for k, v in properties.items()}


def _merge(tree: KeyTree, other: Any) -> None:
    if other == FREE:
        tree.clear()
        tree[FREE] = FREE
        return
    for key, below in other.items():
        mine = tree.get(key)
        if mine is None:
            tree[key] = below
        elif mine == FREE or below == FREE:
            tree[key] = FREE
        elif isinstance(mine, dict) and isinstance(below, dict):
            if FREE in mine:
                continue
            _merge(mine, below)
    if FREE in tree:
        tree.clear()
        tree[FREE] = FREE


def _path_tree(dotted: str) -> KeyTree:
    *parents, leaf = dotted.split(".")
    node: KeyTree = {leaf: FREE}
    for part in reversed(parents):
        node = {part: node}
    return node


# --- reading chart files -----------------------------------------------------------

def _yaml(data: bytes | None, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        loaded = safe_load(data.decode())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"{where}: cannot be read ({error})") from None
    return loaded if isinstance(loaded, dict) else {}


def _dir_files(chart: Path) -> dict[str, bytes]:
    return {p.relative_to(chart).as_posix(): p.read_bytes() for p in sorted(chart.rglob("*"))
            if p.is_file() and (p.name in CHART_FILES or p.name.endswith(".tgz"))}


def _archive_files(data: bytes, where: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                name = PurePosixPath(member.name)
                if not member.isfile() or len(name.parts) < 2 or not (name.name in CHART_FILES or name.name.endswith(".tgz")):
                    continue
                stream = archive.extractfile(member)
                if stream is not None:
                    files[PurePosixPath(*name.parts[1:]).as_posix()] = stream.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InputError(f"{where}: the chart archive cannot be read ({error}); run `make charts-verify`") from None
    return files


def _subcharts(files: dict[str, bytes], where: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    folders: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        if not path.startswith("charts/"):
            continue
        rest = path[len("charts/"):]
        if "/" not in rest and rest.endswith(".tgz"):
            nested = _archive_files(data, f"{where}/{path}")
            name = str(_yaml(nested.get("Chart.yaml"), f"{where}/{path}").get("name") or rest.removesuffix(".tgz"))
            yield name, nested
        elif "/" in rest:
            folder, inner = rest.split("/", 1)
            folders.setdefault(folder, {})[inner] = data
    for folder, sub in folders.items():
        name = str(_yaml(sub.get("Chart.yaml"), f"{where}/charts/{folder}").get("name") or folder)
        yield name, sub


def cached_key_tree(chart: Path, digest: str, cache: Path) -> KeyTree:
    """chart_key_tree, kept in `cache/<digest>.json` (a chart's declared keys only: no values, no secrets)."""
    path = cache / f"{digest}.json"
    try:
        loaded: KeyTree = json.loads(path.read_text())
        return loaded
    except (OSError, ValueError):
        pass
    tree = chart_key_tree(chart)
    cache.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(tree, sort_keys=True))
    temporary.replace(path)
    return tree
