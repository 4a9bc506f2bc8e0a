"""From a Helmfile site to stack config: plain functions (no tool calls).

- `infer_platform`: the platform settings (external IP, NFS, registry, file
  server, ...) read back from the values Helmfile gives each release, by the
  catalog's own `settings` mapping run in reverse (a template becomes a pattern).
- `overlay`: the smallest stack override that turns the project's values into
  Helmfile's (`None` removes a key).
- `take_secrets`: values at the catalog's secret paths, and credential-looking
  values elsewhere (named as the policy's `no-plain-secrets` rule names them),
  taken out before anything is written.
- `shared`: what several environments' configs have in common (the parent stack).
- `stack_document`: a stack file in Pulumi's config format, keeping what Pulumi
  owns (encryption salt, secrets already set).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.catalog import Catalog
from model.derived import REFERENCE, VALUES_PREFIX, get_indexed, is_template
from model.stackfile import PROJECT
from model.values import SECRET_KEY, is_reference_key

# Platform setting -> where it lives in a stack's config.
CONFIG_PLACES = {
    "externalIP": ("cluster", "externalIP"), "domain": ("cluster", "domain"), "storageClass": ("cluster", "storageClass"),
    "nfs.server": ("cluster", "nfs", "server"), "nfs.path": ("cluster", "nfs", "path"),
    "imageRegistry": ("offline", "registry"), "fileServer": ("offline", "fileServer"),
}


@dataclass
class Inferred:
    """Platform settings read from Helmfile's values, and where readings disagree."""

    settings: dict[str, Any] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


def template_pattern(spec: str) -> tuple[re.Pattern[str], list[tuple[str, str | None]]]:
    """A regex matching what a template produces; groups in order with (setting or '', fallback)."""
    parts, refs, last = [], [], 0
    for match in REFERENCE.finditer(spec):
        parts.append(re.escape(spec[last:match.start()]))
        name = match[1].strip()
        refs.append(("" if name.startswith(VALUES_PREFIX) else name, match[2]))
        parts.append("(.+?)")
        last = match.end()
    parts.append(re.escape(spec[last:]))
    return re.compile("^" + "".join(parts) + "$"), refs


def infer_platform(catalog: Catalog, values: Mapping[str, Mapping[str, Any]]) -> Inferred:
    """The platform settings that explain Helmfile's values through the catalog's `settings` entries.

    A value that matches a template's fallback is evidence that the setting is
    unset; a value that does not fit the template says nothing (it becomes a
    per-release value). Disagreeing readings are reported; the most frequent set value wins
    (the releases that read otherwise keep their value as a per-release override).
    """
    seen: dict[str, list[Any]] = {}
    where: dict[str, list[str]] = {}
    for release in catalog.releases:
        if release.name not in values:
            continue
        for path, spec in release.settings.items():
            value = get_indexed(values[release.name], path)
            if value is None:
                continue
            for setting, reading in _readings(spec, value):
                seen.setdefault(setting, []).append(reading)
                where.setdefault(setting, []).append(f"{release.name}: {path} = {value!r}")
    result = Inferred()
    for setting, readings in seen.items():
        counts = Counter(str(r) if r is not None else None for r in readings)
        if len(counts) > 1:
            result.conflicts.append(f"platform setting {setting!r} reads differently per release: {'; '.join(where[setting])}")
        set_readings = Counter(str(r) for r in readings if r is not None)
        if set_readings:
            best, _ = set_readings.most_common(1)[0]
            result.settings[setting] = next(r for r in readings if r is not None and str(r) == best)
    return result


def _readings(spec: str, value: Any) -> Iterator[tuple[str, Any]]:
    if not is_template(spec):
        yield spec, value
        return
    pattern, refs = template_pattern(spec)
    match = pattern.match(str(value))
    if not match:
        return
    for (setting, fallback), group in zip(refs, match.groups(), strict=True):
        if setting:
            yield setting, None if fallback is not None and group == fallback else group


def platform_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Platform settings as the stack's `cluster` and `offline` config objects."""
    config: dict[str, Any] = {}
    for setting, value in settings.items():
        *parents, leaf = CONFIG_PLACES[setting]
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def overlay(base: Any, target: Any) -> Any:
    """The override that, laid over base (maps merge, `None` removes), gives target; {} when equal."""
    if not (isinstance(base, Mapping) and isinstance(target, Mapping)):
        raise TypeError("overlay compares two maps")
    out: dict[str, Any] = {}
    for key, value in target.items():
        if key not in base:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping) and value:
            sub = overlay(base[key], value)
            if sub:
                out[key] = sub
        elif not _same(base[key], value):
            out[key] = copy.deepcopy(value)
    for key in base:
        if key not in target:
            out[key] = None
    return out


def _same(a: Any, b: Any) -> bool:
    # bool is an int in Python and 1 == 1.0: YAML keeps them apart, so must we.
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def prune_defaults(override: dict[str, Any], base: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """override without leaves that only restate the chart's default where base sets nothing."""
    out: dict[str, Any] = {}
    for key, value in override.items():
        in_base = base.get(key) if isinstance(base, Mapping) else None
        default = defaults.get(key) if isinstance(defaults, Mapping) else None
        if isinstance(value, Mapping) and value:
            sub = prune_defaults(dict(value), in_base if isinstance(in_base, Mapping) else {}, default if isinstance(default, Mapping) else {})
            if sub:
                out[key] = sub
        elif in_base is None and value is not None and default is not None and _same(value, default):
            continue
        else:
            out[key] = value
    return out


def take_secrets(values: Mapping[str, Any], secret_paths: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(values without secrets, catalog secret key -> values path found set, credential-looking paths outside the catalog).

    Both kinds are removed from the values returned; neither value is returned.
    """
    clean = copy.deepcopy(dict(values))
    found: dict[str, str] = {}
    for path, key in secret_paths.items():
        if _pop_path(clean, path) not in (None, ""):
            found[key] = path
    loose = [path for path in list(_credential_paths(clean, ""))]
    for path in loose:
        _pop_path(clean, path)
    return clean, found, loose


def _credential_paths(node: Any, prefix: str) -> Iterator[str]:
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _credential_paths(value, path)
        elif SECRET_KEY.search(str(key)) and not is_reference_key(str(key)) and not isinstance(value, bool) \
                and isinstance(value, str | int | float) and value != "":
            yield path


def _pop_path(values: dict[str, Any], dotted: str) -> Any:
    *parents, leaf = dotted.split(".")
    node: Any = values
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, dict):
        return None
    return node.pop(leaf, None)


def drop_paths(values: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """values without these dotted paths (empty maps left behind removed)."""
    result = copy.deepcopy(values)
    for path in paths:
        _pop_path(result, path)
        parents = path.split(".")[:-1]
        while parents:
            parent_path = ".".join(parents)
            node = get_indexed(result, parent_path)
            if isinstance(node, dict) and not node:
                _pop_path(result, parent_path)
                parents = parents[:-1]
            else:
                break
    return result


def shared(configs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """What every config holds with the same value (maps compared key by key); removals (None) stay with each child."""
    if not configs:
        return {}
    first, rest = configs[0], configs[1:]
    out: dict[str, Any] = {}
    for key, value in first.items():
        others = [c.get(key, _MISSING) for c in rest]
        if any(o is _MISSING for o in others) or value is None:
            continue
        if isinstance(value, Mapping) and all(isinstance(o, Mapping) for o in others):
            sub = shared([value, *others])
            if sub:
                out[key] = sub
        elif all(_same(value, o) for o in others) and not _holds_none(value):
            out[key] = copy.deepcopy(value)
    return out


def _holds_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_holds_none(v) for v in value.values())
    return False


def without(config: Mapping[str, Any], common: Mapping[str, Any]) -> dict[str, Any]:
    """config minus what common already gives (inherited from the parent stack)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key not in common:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(common[key], Mapping):
            sub = without(value, common[key])
            if sub:
                out[key] = sub
        elif not _same(value, common[key]):
            out[key] = copy.deepcopy(value)
    return out


_MISSING = object()


def stack_document(existing: Mapping[str, Any] | None, config: Mapping[str, Any], inherits: str | None) -> dict[str, Any]:
    """A stack file's content: the project's plain config replaced by `config`, everything Pulumi owns kept.

    Kept from an existing file: top-level keys other than `config` (encryptionsalt,
    secretsprovider, ...), encrypted values (`secure:`), and keys of other namespaces.
    """
    document = {k: copy.deepcopy(v) for k, v in (existing or {}).items() if k != "config"}
    old = dict((existing or {}).get("config") or {})
    new: dict[str, Any] = {}
    for key, value in old.items():
        namespace, _, _short = str(key).partition(":")
        if namespace != PROJECT or (isinstance(value, Mapping) and "secure" in value):
            new[key] = copy.deepcopy(value)
    if inherits:
        new[f"{PROJECT}:inherits"] = inherits
    for short, value in config.items():
        if value not in (None, {}, []):
            new[f"{PROJECT}:{short}"] = copy.deepcopy(value)
    document["config"] = dict(sorted(new.items()))
    return document
