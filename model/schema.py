"""Data files checked against their JSON Schemas (catalog/schemas/*.schema.json)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from model.errors import InputError

SCHEMAS = Path(__file__).resolve().parent.parent / "catalog" / "schemas"


@lru_cache(maxsize=8)
def _validator(name: str) -> Any:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def check(data: Any, schema: str, where: str, fix: str = "") -> None:
    """InputError naming `where`, the first wrong field and the schema file when data breaks catalog/schemas/<schema>."""
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        first = errors[0]
        field = ".".join(str(p) for p in first.absolute_path) or "the top"
        raise InputError(f"{where}: {field}: {first.message} (format: catalog/schemas/{schema}){'; ' + fix if fix else ''}")
