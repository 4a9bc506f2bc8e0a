"""Stack files as data: the plain config a customer stack inherits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from model.errors import InputError
from model.values import deep_merge

PROJECT = "astrago-deploy"
# Keys a customer stack may inherit from its environment's stack file.
INHERITED_KEYS = ("cluster", "offline", "releases", "externals", "chartsDir")


def plain_config(path: Path) -> dict[str, Any]:
    """The project's plain (unencrypted) config values in a stack file, by short key.

    Encrypted values are left out: they belong to that stack's secrets provider.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such stack file; `inherits` must name an existing stack (dev, stage, prod, ...)")
    data = yaml.safe_load(path.read_text()) or {}
    result: dict[str, Any] = {}
    for key, value in (data.get("config") or {}).items():
        namespace, _, short = str(key).partition(":")
        if namespace == PROJECT and short in INHERITED_KEYS and not (isinstance(value, dict) and "secure" in value):
            result[short] = value
    return result


def with_inherited(root: Path, raw: dict[str, Any], parent: str | None) -> dict[str, Any]:
    """Lay a stack's config over the stack it inherits from (one level, no chains)."""
    if not parent:
        return raw
    base = plain_config(root / f"Pulumi.{parent}.yaml")
    merged = dict(base)
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = deep_merge(base[key], value)
        else:
            merged[key] = value
    return merged
