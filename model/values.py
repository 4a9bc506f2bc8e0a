"""Helm values layering: base file, platform settings, endpoints, stack overrides."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from model.errors import InputError

# Shown instead of a secret wherever values are printed.
MASK = "[secret]"
# Keys whose values are credentials: *password*, *passwd*, *token*, *secret*.
SECRET_KEY = re.compile(r"pass(word|wd)|token|secret", re.IGNORECASE)
# Keys that name where a credential lives, not the credential: existingSecret,
# tlsSecretName, passwordSecretKey (the key inside a Secret), adminPasswordKey,
# *SecretRef, *SecretKeyRef. A bare `secretKey` (an S3/MinIO credential) is not one.
REFERENCE_KEY = re.compile(r"^existing|[Ss]ecretName$|[Ss]ecretRef$|[Ss]ecretKeyRef$|[a-z](Password|Token|Secret)Key$")


def is_reference_key(key: str) -> bool:
    """True for keys that name where a credential is kept (existingSecret, tlsSecretName, ...)."""
    return bool(REFERENCE_KEY.search(key))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return base with override laid over it; maps merge, everything else replaces.

    A key set to None in override removes it, as `--set key=null` does in Helm.
    Neither input is modified.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in nested maps, creating the maps on the way."""
    *parents, leaf = dotted.split(".")
    node = values
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"values path {dotted!r}: {part!r} already holds {child!r}, not a map")
        node = child
    node[leaf] = value


def get_path(values: Mapping[str, Any], dotted: str) -> Any:
    """Read `a.b.c` from nested maps; None when any part is missing."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def layer_values(
    base: Mapping[str, Any],
    settings: Mapping[str, Any],
    injected: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Resolve one release's values, lowest layer first.

    base: the release's file under values/; settings and injected: dotted
    paths set from platform settings and from the endpoints of needed
    releases; overrides: the stack's values for the release, which win.
    The chart's own defaults sit under all of these (Helm applies them).
    """
    resolved = deep_merge({}, base)
    for dotted, value in {**settings, **injected}.items():
        if value is not None:
            set_path(resolved, dotted, value)
    return deep_merge(resolved, overrides)


def mask(values: Mapping[str, Any], secret_paths: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of values with every secret path replaced by the mask."""
    masked = copy.deepcopy(dict(values))
    for dotted in secret_paths:
        set_path(masked, dotted, MASK)
    return masked


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested maps by dotted path; lists, secrets and empty maps are leaves."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}
