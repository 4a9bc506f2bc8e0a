"""The project's data files checked against their JSON Schemas (schemas/*.schema.json), in one place.

Every reader of a data file (stack files, catalog, chart declarations, the
chart lock, own charts' Chart.yaml, the runtime images, the images locks)
calls `check`; its errors name
the file, the line (when the YAML loader kept it) and the key path, and say
what is allowed. Formats the schemas use and jsonschema does not check by
itself (url, duration, host, ...) are checked here.

Importing jsonschema costs about 0.2 s, on every preview. A document that
passed is remembered by the digest of the schemas, its name and its data
(`.state/schema-ok/`), so unchanged files are not validated, nor jsonschema
imported, again; any change of data or schema validates afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from model.errors import InputError
from model.yamlload import Document, KeyPath

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schemas"
CACHE_ENV = "ASTRAGO_SCHEMA_CACHE"
# Cache keys of documents that passed, in this process.
_PASSED: set[str] = set()
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")
GO_DURATION = re.compile(r"^(?=\d)(\d+h)?(\d+m)?(\d+s)?$")
TYPE_NAMES = {"object": "a map", "array": "a list", "string": "a string", "boolean": "true or false",
              "integer": "a whole number", "number": "a number"}
FORMAT_HINTS = {
    "url": "an http:// or https:// URL with a host, e.g. https://sso.example.com",
    "chart-repository": "an http(s):// chart repository URL or an oci:// reference with a host",
    "duration": "a duration such as 600s, 10m or 1h30m",
    "host": "a host name or IP address",
    "hostname": "a DNS name such as astrago.example.com",
    "ip-address": "an IPv4 or IPv6 address",
}


def duration_seconds(text: str) -> int:
    """Seconds of a duration the `duration` format accepts (600s, 10m, 1h30m)."""
    match = GO_DURATION.match(text)
    if not match or not text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(part[:-1]) * {"h": 3600, "m": 60, "s": 1}[part[-1]] for part in match.groups() if part)


def _is_host(text: str) -> bool:
    import ipaddress  # deferred with the other format checks: they run only when a document is validated

    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return bool(HOSTNAME.match(text))


def _is_url(text: str, schemes: Iterable[str]) -> bool:
    from urllib.parse import urlsplit

    if any(c.isspace() for c in text):
        return False
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in schemes and bool(host) and _is_host(host) and (port is None or 0 < port < 65536)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


FORMATS = {
    "url": lambda v: _is_url(v, ("http", "https")),
    "chart-repository": lambda v: _is_url(v, ("http", "https", "oci")),
    "duration": lambda v: bool(v) and GO_DURATION.match(v) is not None and duration_seconds(v) > 0,
    "host": _is_host,
    "hostname": lambda v: bool(HOSTNAME.match(v)),
    "ip-address": _is_ip,
}


@lru_cache(maxsize=1)
def _schemas() -> dict[str, dict[str, Any]]:
    return {p.name.removesuffix(".schema.json"): json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.schema.json"))}


@lru_cache(maxsize=1)
def _schema_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(Path(__file__).read_bytes())  # the format checks are part of the schema
    return digest.hexdigest()


def schema(name: str) -> dict[str, Any]:
    """A schema by file name without `.schema.json` (stack, catalog, helm-options, ...)."""
    try:
        return _schemas()[name]
    except KeyError:
        raise InputError(f"{SCHEMA_DIR / (name + '.schema.json')}: no such schema (restore it from git)") from None


@lru_cache(maxsize=8)
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]  # deferred: 0.2 s, only when something is validated
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (body["$id"], Resource.from_contents(body)) for body in _schemas().values() if "$id" in body
    )
    checker = FormatChecker(formats=())
    for format_name, test in FORMATS.items():
        checker.checks(format_name)(lambda value, test=test: not isinstance(value, str) or test(value))
    return Draft202012Validator(schema(name), registry=registry, format_checker=checker)


def _cache_dir() -> str:
    return os.environ.get(CACHE_ENV) or str(ROOT / ".state" / "schema-ok")


def _cache_key(name: str, data: Any) -> str:
    body = json.dumps(data, sort_keys=True, default=lambda o: f"<{type(o).__name__}:{o!r}>")
    return hashlib.sha256(f"{_schema_digest()}\0{name}\0{body}".encode()).hexdigest()


def problems(name: str, document: Document, hide: int = 0, label: str = "") -> list[str]:
    """Every violation of schema `name` by document.data, as messages naming file, line and key path.

    hide: leading parts of each key path left out of messages (1 for a stack file's `config`);
    label: a key path the data sits at, put before each path (`helm` for Helm options).
    """
    data: Any = document.data
    key = _cache_key(name, data)
    if key in _PASSED:
        return []
    folder = _cache_dir()
    marker = os.path.join(folder, key)
    if os.path.exists(marker):
        _PASSED.add(key)
        return []
    errors = sorted(_validator(name).iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)))
    found = [message for error in _leaves(errors) for message in _messages(error, document, hide, label)]
    if not found:
        _PASSED.add(key)
        try:
            os.makedirs(folder, exist_ok=True)
            with open(marker, "w"):
                pass
        except OSError:
            pass  # a read-only checkout validates every time
    return list(dict.fromkeys(found))


def check(name: str, document: Document, hide: int = 0, label: str = "", fix: str = "") -> None:
    """Raise InputError with every violation of schema `name` (see `problems`), each followed by `fix` when given."""
    found = problems(name, document, hide, label)
    if found:
        raise InputError(*(f"{message}; {fix}" if fix else message for message in found))


def _leaves(errors: Iterable[Any]) -> list[Any]:
    """The most specific errors: of a oneOf/anyOf, the branch that got furthest when only one applies."""
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    result = []
    for error in errors:
        if error.validator in ("oneOf", "anyOf") and error.context:
            custom = error.schema.get("x-message")
            result.append(error if custom else best_match(error.context))
        else:
            result.append(error)
    return result


def _path_text(path: KeyPath, data: Any, hide: int = 0) -> str:
    """`a.b[2].c`; a list item that has a `name` shows it: `releases[astrago]`."""
    text = ""
    node = data
    hide = hide if len(path) > hide else 0  # a path that ends in the hidden part is shown whole
    for position, part in enumerate(path):
        if position < hide:
            node = node.get(part) if isinstance(node, dict) else None
            continue
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) and isinstance(node[part].get("name"), str):
                label = node[part]["name"]
            text += f"[{label}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            text += ("." if text else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(top level)"


def _messages(error: Any, document: Document, hide: int, label: str) -> list[str]:
    path: KeyPath = tuple(error.absolute_path)
    stack = re.fullmatch(r"(?:.*/)?Pulumi\.(.+)\.yaml", document.source.split(" ")[0])

    def say(where: KeyPath, text: str) -> str:
        shown = _path_text(where, document.data, hide)
        shown = f"{label}.{shown}" if label and where else (label or shown)
        key = str(where[-1]).rpartition(":")[2] if where else ""
        text = text.replace("{key}", key).replace("{stack}", stack[1] if stack else "<stack>")
        return f"{document.where(where)}: {shown}{' ' if text.startswith('is ') else ': '}{text}"

    value = error.instance
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        renamed = error.schema.get("x-renamed", {})
        patterns = list(error.schema.get("patternProperties", {}))
        return [say((*path, extra), renamed.get(extra) or _unknown(extra, allowed))
                for extra in sorted(set(value) - set(allowed)) if not any(re.match(p, extra) for p in patterns)]
    if custom:
        return [say(path, custom if custom.startswith("is ") else f"{custom}, not {_show(value)}")]
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        names = " or ".join(TYPE_NAMES.get(str(w), str(w)) for w in wanted if w != "null")
        return [say(path, f"must be {names}, not {_show(value)}")]
    if kind == "required":
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        return [say(path, f"missing key {', '.join(missing)}")]
    if kind == "enum":
        return [say(path, f"{_show(value)} is not allowed; choose one of {', '.join(map(str, error.validator_value))}")]
    if kind == "const":
        return [say(path, f"must be {error.validator_value!r}, not {_show(value)}")]
    if kind == "format":
        return [say(path, f"{_show(value)} is not {FORMAT_HINTS.get(error.validator_value, error.validator_value)}")]
    if kind in ("minimum", "maximum"):
        return [say(path, f"{_show(value)} is {'below' if kind == 'minimum' else 'above'} the {kind} {error.validator_value}")]
    if kind in ("minProperties", "maxProperties") and error.schema.get("description"):
        return [say(path, f"must be {error.schema['description']}")]
    if kind in ("minItems", "minLength"):
        return [say(path, "must not be empty")]
    if kind == "uniqueItems":
        return [say(path, "lists an item twice")]
    return [say(path, error.message)]


def _unknown(key: str, allowed: list[str]) -> str:
    """`unknown key`, the closest allowed name when one is close, and the allowed names."""
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    return "unknown key" + (f"; did you mean {close[0]}?" if close else ".") + f" Allowed here: {', '.join(allowed) or 'none'}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
