"""Charts pulled by the pinned helm: HTTP repositories (`--repo` semantics) and OCI registries (`oci://`).

Helm does every request (TLS, CA, redirects, basic auth, OCI tokens, provenance
checks); this wrapper gives each pull a private Helm home in a temporary
folder, so the user's own repositories and logins are neither read nor
changed and no credential outlives the pull, and turns Helm's answers into
what the chart sync records: the archive, the digest the repository publishes
(an HTTP index entry's `digest`, an OCI manifest digest) and a clear message
when something goes wrong.

Credentials reach Helm on standard input (`helm repo add --password-stdin`,
`helm registry login --password-stdin`), never on a command line, where any
local user could read them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.process import ToolError, run, tool
from model.errors import InputError

OCI = "oci://"
# An index larger than this is not a chart repository's (bitnami's full index is ~25 MiB).
MAX_INDEX_BYTES = 64 * 1024 * 1024
# A chart archive larger than this is not a chart.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
DIGEST = re.compile(r"^[0-9a-f]{64}$")
OCI_DIGEST = re.compile(r"^Digest:\s*(sha256:[0-9a-f]{64})\s*$", re.MULTILINE)
ALIAS = "source"


@dataclass(frozen=True)
class Access:
    """How to reach one repository: credentials (from the environment) and TLS options."""

    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    plain_http: bool = False
    """OCI only: talk HTTP, not HTTPS (a registry on a trusted network, or a test)."""


@dataclass(frozen=True)
class Pulled:
    """One chart archive Helm fetched into a staging folder."""

    archive: Path
    published_digest: str
    """What the repository publishes for it: the index entry's sha256 (HTTP) or 'sha256:<manifest digest>' (OCI); '' when none."""
    signer: str
    """For a verified pull: 'Signed by ... (key fingerprint ...)' as helm reported it; '' when not verified."""


class Deadline:
    """The time left of a bounded operation; `left()` raises once it ran out."""

    def __init__(self, seconds: float, what: str) -> None:
        self.end = time.monotonic() + seconds
        self.what = what

    def left(self) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0.5:
            raise InputError(f"{self.what}: the time limit ran out (raise it with --deadline)")
        return remaining


def _helm_env(home: Path, access: Access) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
    env.update({
        "HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home / "cache"), "HELM_DATA_HOME": str(home / "data"),
        "HELM_REPOSITORY_CONFIG": str(home / "config" / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(home / "cache" / "repository"),
        "HELM_REGISTRY_CONFIG": str(home / "config" / "registry" / "config.json"),
    })
    return env


def _run(command: list[str], deadline: Deadline, env: dict[str, str], where: str, stdin: str | None = None) -> str:
    try:
        done = run(command, deadline.left(), env=env, stdin=stdin)
        return done.stdout + done.stderr  # helm reports pulls (Pulled:, Digest:, Signed by:) on stderr
    except ToolError as error:
        text = str(error)
        if "did not finish within" in text:
            raise InputError(f"{where}: the repository did not answer within the time limit (raise it with --deadline); nothing was changed") from None
        raise InputError(f"{where}: helm could not fetch it: {_helm_reason(text)}") from None


def _helm_reason(text: str) -> str:
    """Helm's own error text, without the command echo."""
    match = re.search(r"failed \(exit \d+\): (.*)$", text, re.DOTALL)
    reason = match.group(1) if match else text
    return reason.replace("Error: ", "").strip()[-500:] or text


def pull(chart: str, version: str, repository: str, into: Path, access: Access, deadline: Deadline,
         keyring: Path | None = None, allow_unpublished_digest: bool = False) -> Pulled:
    """Fetch chart@version from repository into `into` (a staging folder) with the pinned helm.

    keyring: verify the chart's provenance file against it (`helm pull --verify --keyring`).
    allow_unpublished_digest: accept an HTTP index entry without a digest (published_digest '').
    """
    where = f"chart {chart} {version} from {repository}"
    home = Path(tempfile.mkdtemp(prefix="astrago-helm-"))
    try:
        env = _helm_env(home, access)
        out = into / f".pull-{chart}"
        out.mkdir(parents=True)
        tls = ["--ca-file", access.ca_file] if access.ca_file else []
        verify = ["--verify", "--keyring", str(keyring)] if keyring else []
        if repository.startswith(OCI):
            published, said = _pull_oci(chart, version, repository, out, access, deadline, env, tls, verify, where)
        else:
            published, said = _pull_http(chart, version, repository, out, access, deadline, env, tls, verify, where, allow_unpublished_digest)
        archives = sorted(out.glob("*.tgz"))
        if len(archives) != 1:
            raise InputError(f"{where}: helm pull left {[a.name for a in archives]} instead of one chart archive")
        if archives[0].stat().st_size > MAX_ARCHIVE_BYTES:
            raise InputError(f"{where}: the archive is larger than {MAX_ARCHIVE_BYTES} bytes; not a chart archive, refusing it")
        return Pulled(archive=archives[0], published_digest=published, signer=_signer(said, where) if keyring else "")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _pull_http(chart: str, version: str, repository: str, out: Path, access: Access, deadline: Deadline,
               env: dict[str, str], tls: list[str], verify: list[str], where: str, allow_unpublished: bool) -> tuple[str, str]:
    """`helm repo add` (Helm fetches and checks the index) then `helm pull source/<chart>`; the index entry's digest."""
    helm = tool("helm")
    add = [helm, "repo", "add", ALIAS, repository, *tls]
    stdin = None
    if access.username is not None:
        add += ["--username", access.username, "--password-stdin"]
        stdin = access.password or ""
    _run(add, deadline, env, f"{where}: index", stdin)
    index_file = Path(env["HELM_REPOSITORY_CACHE"]) / f"{ALIAS}-index.yaml"
    published = _index_digest(index_file, chart, version, repository, allow_unpublished)
    said = _run([helm, "pull", f"{ALIAS}/{chart}", "--version", version, "--destination", str(out), *verify], deadline, env, where)
    return published, said


def _index_digest(index_file: Path, chart: str, version: str, repository: str, allow_unpublished: bool) -> str:
    """The digest the index publishes for chart@version ('' and a refusal rules as below).

    Read as text-typed YAML: a digest of digits only (`000...0`) is a string
    here, never the integer YAML would make of it.
    """
    where = f"{repository}/index.yaml"
    if not index_file.is_file():
        raise InputError(f"{where}: helm fetched no index")
    if index_file.stat().st_size > MAX_INDEX_BYTES:
        raise InputError(f"{where}: larger than {MAX_INDEX_BYTES} bytes; not a chart repository index")
    try:
        index: Any = yaml.load(index_file.read_text(), Loader=_TextLoader)  # a SafeLoader: no object construction
    except yaml.YAMLError as error:
        raise InputError(f"{where}: the index is not valid YAML ({error})") from None
    entries = (index.get("entries") or {}).get(chart) if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise InputError(f"chart {chart}: not in the index of {repository}")
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("version")) in (version, version.lstrip("v")):
            digest = entry.get("digest")
            if (digest is None or digest == "") and allow_unpublished:
                return ""
            if digest is None or digest == "":
                raise InputError(f"chart {chart} {version}: the index of {repository} publishes no digest for it, so the download cannot be checked "
                                 "against the repository; ask its maintainers to publish one (helm repo index does) or declare "
                                 "`allowUnpublishedDigest: true` for this chart in charts/external.yaml to accept it on the lock's sha256 alone")
            if not isinstance(digest, str) or not DIGEST.match(digest):
                raise InputError(f"chart {chart} {version}: the index of {repository} publishes digest {digest!r}, which is not a sha256 "
                                 "(64 hex digits); refusing the chart")
            return digest
    versions = sorted(str(e.get("version")) for e in entries if isinstance(e, dict))
    raise InputError(f"chart {chart}: version {version} is not in the index of {repository}; it has {versions[-10:]}")


def _pull_oci(chart: str, version: str, repository: str, out: Path, access: Access, deadline: Deadline,
              env: dict[str, str], tls: list[str], verify: list[str], where: str) -> tuple[str, str]:
    """`helm pull oci://<repository>/<chart> --version`; the manifest digest Helm prints."""
    helm = tool("helm")
    plain = ["--plain-http"] if access.plain_http else []
    if access.username is not None:
        host = repository.removeprefix(OCI).split("/", 1)[0]
        login = [helm, "registry", "login", host, "--username", access.username, "--password-stdin", *tls]
        login += ["--insecure"] if access.plain_http else []
        _run(login, deadline, env, f"{where}: login", access.password or "")
    reference = f"{repository.rstrip('/')}/{chart}"
    text = _run([helm, "pull", reference, "--version", version, "--destination", str(out), *plain, *tls, *verify], deadline, env, where)
    match = OCI_DIGEST.search(text)
    if not match:
        raise InputError(f"{where}: helm printed no manifest digest for the pull; cannot record what the registry published")
    return match.group(1), text


def _signer(said: str, where: str) -> str:
    """'<signer> (key <fingerprint>)' from what `helm pull --verify` printed."""
    signed = re.search(r"^Signed by:\s*(.+)$", said, re.MULTILINE)
    key = re.search(r"^Using Key With Fingerprint:\s*(\S+)", said, re.MULTILINE)
    if not signed or not key:
        raise InputError(f"{where}: helm --verify did not report the signer; refusing the chart")
    return f"{signed.group(1).strip()} (key {key.group(1)})"


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: indexes run to tens of MiB


class _TextLoader(_Base):  # type: ignore[misc]
    """SafeLoader whose plain scalars under `digest` stay strings (see _index_digest)."""


def _digest_as_text(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "digest" and isinstance(value, yaml.ScalarNode):
            value.tag = "tag:yaml.org,2002:str"
    return dict(loader.construct_mapping(node, deep=True))


_TextLoader.add_constructor("tag:yaml.org,2002:map", _digest_as_text)
