"""Composite platform settings: values the catalog builds from several settings by a template.

A catalog `settings` entry maps a values path to either one platform setting
(`storageClass.name: storageClass`, the value as is) or a template string in
which `{name}` stands for a platform setting, `{name|fallback}` for the
setting or, when it is not set, the fallback text, and `{values.a.b}` for a
value of the release's own resolved values (stack overrides included), e.g.

    externalURL: "http://{externalIP}:{values.expose.nodePort.ports.http.nodePort}"
    nginx.image.repository: "{imageRegistry|docker.io}/goharbor/nginx-photon"

A template whose references are not all set (and have no fallback) sets
nothing, like a plain setting that is not set. Values paths may index lists
that the base values hold (`initContainers[0].image`).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from typing import Any

from model.errors import InputError
from model.values import deep_merge, get_path

REFERENCE = re.compile(r"\{([^{}|]*)(?:\|([^{}]*))?\}")
VALUES_PREFIX = "values."
PATH_PART = re.compile(r"^([^.\[\]]+)((?:\[\d+\])*)$")


def is_template(spec: str) -> bool:
    """Whether a catalog settings entry is a template rather than one setting's name."""
    return "{" in spec or "}" in spec


def check_spec(spec: str, known: tuple[str, ...]) -> str | None:
    """Why a settings entry is wrong (unknown setting, stray brace), or None when it is fine."""
    if not is_template(spec):
        return None if spec in known else f"names {spec!r}; allowed platform settings: {list(known)} or a template such as 'http://{{externalIP}}:30002'"
    if "{" in REFERENCE.sub("", spec) or "}" in REFERENCE.sub("", spec):
        return f"template {spec!r} has an unmatched brace; write {{setting}}, {{setting|fallback}} or {{values.a.b}}"
    for match in REFERENCE.finditer(spec):
        name = match[1].strip()
        if name.startswith(VALUES_PREFIX) and len(name) > len(VALUES_PREFIX):
            continue
        if name not in known:
            return f"template {spec!r} refers to {{{name}}}; allowed: {list(known)} or values.<path>"
    return None


def render(spec: str, platform: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """The value a settings entry gives: the setting itself, or the filled-in template; None when unset."""
    if not is_template(spec):
        return platform.get(spec)
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        name, fallback = match[1].strip(), match[2]
        value = get_path(values, name[len(VALUES_PREFIX):]) if name.startswith(VALUES_PREFIX) else platform.get(name)
        if value is None or value == "":
            if fallback is None:
                missing = True
                return ""
            return fallback
        return str(value)

    text = REFERENCE.sub(fill, spec)
    return None if missing else text


def apply_settings(lower: dict[str, Any], overrides: Mapping[str, Any], settings: Mapping[str, str],
                   platform: Mapping[str, Any]) -> dict[str, Any]:
    """lower (base values with plain settings and endpoints) with every template entry set, then overrides laid over.

    Templates read `{values...}` from the fully layered values, so a stack that
    changes a node port changes the URL built from it; a stack that sets a
    template's own path still wins, as it does over a plain setting.
    """
    templates = {path: spec for path, spec in settings.items() if is_template(spec)}
    if not templates:
        return deep_merge(lower, overrides)
    layered = deep_merge(lower, overrides)
    with_templates = copy.deepcopy(lower)
    for path, spec in templates.items():
        value = render(spec, platform, layered)
        if value is not None:
            set_indexed(with_templates, path, value)
    return deep_merge(with_templates, overrides)


def set_indexed(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b[0].c`: maps are created on the way, list items must exist (the base values hold the list)."""
    steps: list[str | int] = []
    for part in dotted.split("."):
        match = PATH_PART.match(part)
        if not match:
            raise InputError(f"values path {dotted!r}: {part!r} is not a key or key[index]")
        steps.append(match[1])
        steps.extend(int(i) for i in re.findall(r"\[(\d+)\]", match[2]))
    node: Any = values
    for step, following in itertools.pairwise(steps):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise InputError(f"values path {dotted!r}: item [{step}] does not exist; the base values must hold that list")
            node = node[step]
            continue
        if not isinstance(node, dict):
            raise InputError(f"values path {dotted!r}: {step!r} sits in {node!r}, not a map")
        if step not in node:
            if isinstance(following, int):
                raise InputError(f"values path {dotted!r}: {step!r} is not a list in the base values")
            node[step] = {}
        node = node[step]
    leaf = steps[-1]
    if isinstance(leaf, int):
        if not isinstance(node, list) or leaf >= len(node):
            raise InputError(f"values path {dotted!r}: item [{leaf}] does not exist; the base values must hold that list")
        node[leaf] = value
    elif isinstance(node, dict):
        node[leaf] = value
    else:
        raise InputError(f"values path {dotted!r}: {leaf!r} sits in {node!r}, not a map")


def get_indexed(values: Any, dotted: str) -> Any:
    """Read `a.b[0].c`; None when any part is missing."""
    node: Any = values
    for part in dotted.split("."):
        match = PATH_PART.match(part)
        if not match:
            return None
        if not isinstance(node, Mapping) or match[1] not in node:
            return None
        node = node[match[1]]
        for index in (int(i) for i in re.findall(r"\[(\d+)\]", match[2])):
            if not isinstance(node, list) or index >= len(node):
                return None
            node = node[index]
    return node
