"""The objects of a DIY state backend, read where the Pulumi CLI has no command for them.

The one place that knows how Pulumi's DIY backends store their objects. Every
DIY backend is a bucket of keys under `.pulumi/` (pkg/backend/diy in the
Pulumi source): a folder for `file://`, a table of `(key, data)` rows for
`postgres://` (data is `{"data": "<base64>"}`, keys carry the URL's path, the
database name, as a prefix), a bucket for `s3://`, `gs://`, `azblob://`.

The CLI lists updates (`pulumi stack history`) and exports the latest state,
but on a DIY backend it cannot export an earlier update's state: each update
leaves a copy of the state beside its history entry
(`.pulumi/history/<project>/<stack>/<stack>-<unix ns>.{history,checkpoint}.json`),
and this module reads those. Reading only: nothing here writes to a backend.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from cli.process import ToolError, run
from cli.pulumi import redact_url
from model.errors import InputError

PSQL_TIMEOUT_S = 300.0
DEFAULT_TABLE = "pulumi_state"
POSTGRES_HINT = "reading a postgres:// backend needs PostgreSQL's client `psql`: `make postgres` installs it (or `apt-get install postgresql-client`)"
OBJECT_STORE_SCHEMES = ("s3", "gs", "azblob")


class StateStore(Protocol):
    """The objects of one backend, by key relative to the backend's root (`.pulumi/...`)."""

    @property
    def description(self) -> str:
        """The backend as shown to people: its URL with credentials masked."""

    def read_prefix(self, prefix: str) -> dict[str, bytes]:
        """Every object whose key starts with prefix, decompressed, by key; {} when there is none."""


def decompress(key: str, data: bytes) -> bytes:
    """An object's JSON bytes: gzip unpacked (PULUMI_DIY_BACKEND_GZIP); zstd refused with the reason."""
    if key.endswith(".gz"):
        return gzip.decompress(data)
    if key.endswith(".zst"):
        raise InputError(f"{key}: zstd-compressed state, which this Python cannot unpack; the audit reads plain or gzip JSON "
                         "(unset PULUMI_DIY_BACKEND_ZSTD, or use PULUMI_DIY_BACKEND_GZIP, for the next updates)")
    return data


@dataclass(frozen=True)
class FileStore:
    """A `file://` backend: the keys are paths under its folder."""

    root: Path

    @property
    def description(self) -> str:
        return f"file://{self.root}"

    def read_prefix(self, prefix: str) -> dict[str, bytes]:
        folder, _, start = prefix.rpartition("/")
        base = self.root / folder
        if not base.is_dir():
            return {}
        found = {}
        for path in sorted(base.iterdir()):
            if path.is_file() and path.name.startswith(start):
                key = f"{folder}/{path.name}" if folder else path.name
                found[key] = decompress(key, path.read_bytes())
        return found


def psql_program() -> str:
    """PostgreSQL's client: on PATH, else in Debian's per-version folder; InputError naming the install when missing."""
    found = shutil.which("psql")
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True):
        if os.access(folder / "psql", os.X_OK):
            return str(folder / "psql")
    raise InputError(POSTGRES_HINT)


@dataclass(frozen=True)
class PostgresStore:
    """A `postgres://` backend: Pulumi's table of (key, data) rows, read with one psql call per prefix.

    The password goes to psql in PGPASSWORD, never on its command line; the URL's
    query keeps what libpq understands (sslmode, connect_timeout, ...), less `table`.
    """

    url: str

    @property
    def description(self) -> str:
        return redact_url(self.url)

    @property
    def table(self) -> str:
        name = dict(parse_qsl(urlsplit(self.url).query)).get("table") or DEFAULT_TABLE
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise InputError(f"{self.description}: table {name!r} is not a plain SQL name")
        return name

    @property
    def key_prefix(self) -> str:
        """Pulumi prefixes every key with the URL's path (the database name), as for a bucket's sub-folder."""
        path = urlsplit(self.url).path.strip("/")
        return f"{path}/" if path else ""

    def _connection(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.url)
        env = {**os.environ, "PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "15")}
        if parts.password is not None:
            env["PGPASSWORD"] = unquote(parts.password)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "table"])
        return urlunsplit(("postgresql", netloc, parts.path, query, "")), env

    def read_prefix(self, prefix: str) -> dict[str, bytes]:
        key = self.key_prefix + prefix
        pattern = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # psql interpolates :'pattern' (quoted as a literal) in a script read from stdin, not in -c.
        sql = (f"SELECT json_build_object('key', key, 'data', data->>'data') FROM \"{self.table}\" "
               "WHERE key LIKE :'pattern' ESCAPE '\\' ORDER BY key;\n")
        connection, env = self._connection()
        try:
            out = run([psql_program(), "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1",
                       "--set", f"pattern={pattern}", "--dbname", connection, "--file", "-"], PSQL_TIMEOUT_S, stdin=sql, env=env).stdout
        except ToolError as error:
            raise ToolError(f"reading {self.description}: {redact_url(str(error))}") from None
        found = {}
        for line in out.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            name = str(row["key"]).removeprefix(self.key_prefix)
            found[name] = decompress(name, base64.b64decode(row["data"] or ""))
        return found


def open_store(url: str) -> StateStore | None:
    """The reader for a backend URL; None for an object store (s3, gs, azblob), read through the CLI alone.

    InputError for a `file://` folder that holds no state, or a URL that is no DIY backend.
    """
    scheme = urlsplit(url).scheme
    if scheme == "file":
        path = Path(os.path.expanduser(url.removeprefix("file://").split("?", 1)[0]))
        if not (path / ".pulumi").is_dir():
            raise InputError(f"{path}: no Pulumi state here (.pulumi/ is missing); set PULUMI_BACKEND_URL (or --backend) to the backend `make up` used")
        return FileStore(path)
    if scheme in ("postgres", "postgresql"):
        return PostgresStore(url)
    if scheme in OBJECT_STORE_SCHEMES:
        return None
    stores = ", ".join(f"{s}://" for s in OBJECT_STORE_SCHEMES)
    raise InputError(f"state backend {redact_url(url)!r}: not a self-hosted (DIY) backend; the audit reads file://, postgres:// and object stores ({stores})")
