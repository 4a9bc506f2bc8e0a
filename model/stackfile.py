"""Stack files as data: the plain config a customer stack inherits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from model.catalog import Catalog
from model.errors import InputError
from model.settings import StackSettings, parse_settings
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


def stack_settings(root: Path, stack: str, catalog: Catalog, charts_dir: str | None = None) -> StackSettings:
    """A stack's settings read from its file (and the file it inherits), as the program sees them.

    For tools that work without the engine (values, targets, diffs); the
    program itself reads config through Pulumi in __main__.py.
    """
    path = root / f"Pulumi.{stack}.yaml"
    raw = plain_config(path)
    data = yaml.safe_load(path.read_text()) or {}
    parent = (data.get("config") or {}).get(f"{PROJECT}:inherits")
    raw = with_inherited(root, raw, parent if isinstance(parent, str) and parent else None)
    if charts_dir:
        raw["chartsDir"] = charts_dir
    return parse_settings(stack, raw, catalog)
