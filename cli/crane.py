"""Images moved by the pinned crane (go-containerregistry): resolve, pull into OCI layouts, push, check presence.

crane does every registry request (token and basic auth, redirects,
retries, blob mounts and the HEAD checks that make a push skip what the
registry already holds). This wrapper gives crane a private docker config
in a temporary folder, filled from environment variables by `crane auth
login --password-stdin`, so no credential is on a command line or outlives
the run, and points Go's TLS at a CA file (SSL_CERT_FILE) when one is given.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.process import ToolError, run, tool
from model.errors import InputError

TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach one registry: credentials from two environment variables, a CA file."""

    host: str
    username_env: str | None = None
    password_env: str | None = None
    ca_file: str | None = None

    def credentials(self, where: str) -> tuple[str, str] | None:
        if not self.username_env and not self.password_env:
            return None
        username = os.environ.get(self.username_env or "")
        password = os.environ.get(self.password_env or "")
        if not username or password is None:
            raise InputError(f"{where}: the registry {self.host} needs the environment variables {self.username_env} and {self.password_env} set")
        return username, password


class Crane:
    """One crane session: a private docker config with the logins it needs."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.ca_files: dict[str, str] = {}

    def env(self, host: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "SSL_CERT_FILE", "SSL_CERT_DIR")}
        env["DOCKER_CONFIG"] = str(self.config_dir)
        ca = self.ca_files.get(host or "")
        if ca:
            env["SSL_CERT_FILE"] = ca
        return env

    def login(self, access: RegistryAccess, where: str) -> None:
        if access.ca_file:
            if not Path(access.ca_file).is_file():
                raise InputError(f"{where}: CA file {access.ca_file} of the registry {access.host} does not exist")
            self.ca_files[access.host] = access.ca_file
        credentials = access.credentials(where)
        if credentials is None:
            return
        self.call(["auth", "login", access.host, "--username", credentials[0], "--password-stdin"], where, host=access.host, stdin=credentials[1])

    def call(self, args: list[str], where: str, *, host: str | None = None, stdin: str | None = None, timeout_s: float = TIMEOUT_S,
             check: bool = True) -> str:
        try:
            result = run([tool("crane"), *args], timeout_s, env=self.env(host), stdin=stdin, check=check)
        except ToolError as error:
            raise InputError(f"{where}: {_reason(str(error))}") from None
        if not check and result.returncode != 0:
            raise _Missing(result.stderr.strip()[-400:])
        return result.stdout

    # --- reading -----------------------------------------------------------

    def digest(self, reference: str, where: str) -> str:
        """The digest a reference resolves to (the index's for a multi-arch image)."""
        return self.call(["digest", reference], where, host=_host(reference)).strip()

    def manifest(self, reference: str, where: str) -> dict[str, Any]:
        return self.parse_manifest(self.manifest_bytes(reference, where), where)

    def manifest_bytes(self, reference: str, where: str) -> bytes:
        """The manifest exactly as the registry serves it (its sha256 is the digest)."""
        return self.call(["manifest", reference], where, host=_host(reference)).encode()

    @staticmethod
    def parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
        text = raw.decode()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise InputError(f"{where}: the registry returned a manifest that is not JSON") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: the registry returned a manifest that is not an object")
        return data

    def config(self, reference: str, where: str) -> dict[str, Any]:
        data = json.loads(self.call(["config", reference], where, host=_host(reference)) or "{}")
        return data if isinstance(data, dict) else {}

    def present(self, reference: str, where: str) -> bool:
        """Whether the registry holds this digest reference (repository@sha256:...)."""
        try:
            self.call(["digest", reference], where, host=_host(reference), timeout_s=120, check=False)
        except _Missing:
            return False
        return True

    # --- writing -----------------------------------------------------------

    def pull_layout(self, reference: str, layout: Path, where: str) -> None:
        """Pull one image or index by digest into a new OCI layout folder (crane pull --format oci)."""
        self.call(["pull", "--format", "oci", reference, str(layout)], where, host=_host(reference))

    def push_layout(self, layout: Path, reference: str, where: str) -> str:
        """Push a one-entry OCI layout to reference; return the digest crane reports."""
        out = self.call(["push", str(layout), reference], where, host=_host(reference))
        return out.strip().rsplit("@", 1)[-1]


class _Missing(Exception):
    """crane answered with a non-zero exit for a presence check."""


@contextmanager
def session() -> Iterator[Crane]:
    """A crane with a private docker config, removed (logins included) when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="astrago-crane-"))
    try:
        (folder / "config.json").write_text("{}")
        yield Crane(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _host(reference: str) -> str:
    return reference.split("/", 1)[0]


def _reason(text: str) -> str:
    """crane's own error line, without the command echo."""
    reason = text.split("): ", 1)[-1] if text.startswith("`") else text
    lines = [line.removeprefix("Error: ") for line in reason.splitlines() if line.strip()]
    return (lines[-1] if lines else text)[-500:]
