"""Render every release with the pinned Helm before anything registers, cached by the release's inputs.

`render_releases` is the one render of the project: the program runs it
before the first resource registers (so a schema violation, a template error
or a missing required value fails `preview` and `up` with nothing changed),
and `make diff` runs it to print what differs. Per release:

- against a reachable cluster, `helm upgrade --install --dry-run=server`
  (as helm-diff does): the cluster's own capabilities, Kind-level API
  versions included, and `lookup` answered by the cluster, so secrets a
  chart generates once and keeps by lookup come out as they run. A first
  install that a server dry run cannot do (custom resources of CRDs the
  chart itself brings, a namespace that does not exist yet) is rendered
  with `helm template` and the cluster's version and API versions;
- without a cluster, `helm template` with the last capabilities seen, or
  the toolchain's Kubernetes version.

The render is compared with the revision that runs (`helm get manifest`
and hooks): objects added, changed (leaf changes, `model.structdiff`) and
removed, Secret data and the release's secret values masked. A release whose
running revision has exactly the stack's inputs (values, secrets included,
and the description holding chart version, digest and post-render) shows no
change: `up` does not upgrade it, so what a chart generates anew on every
render (harbor's certificates and their checksums) changes nothing.

Cache: `.state/render/<digest>.json`, one file per release and inputs. The
digest covers the chart's content digest, every value (secrets too, through
an HMAC with a key of this machine, `.state/render/key`, so no file holds a
plain hash of a password), the Helm options, the post-render, the cluster's
version and API versions, the release's latest Helm revision and status (a
release changed behind the program's back is rendered again), and the helm
binary. A file holds only the masked comparison, never a value or a
rendered Secret. Failures are not cached.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as secrets_module
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cli import helm
from cli.kubectl import ClusterFacts, helm_revisions
from cli.process import ToolError
from model.deployment import Deployment, ResolvedRelease, release_description
from model.errors import InputError
from model.manifest import ObjectKey, parse_manifest, scrub
from model.structdiff import ABSENT, Change, ObjectsDiff, diff_objects
from model.values import set_path
from postrender.plan import refused_problems, write_wrapper

CACHE_DIR = Path(".state/render")
FORMAT = 1
"""Bump when what a cache file holds, or how it is computed, changes."""
WORKERS = 4
"""Releases rendered side by side: Helm is mostly waiting on the API server in a server dry run."""
TIMEOUT_S = 120.0
# A first install that a server dry run cannot do; `helm template` renders it instead.
CRDS_FIRST = "ensure CRDs are installed first"


@dataclass(frozen=True)
class Cluster:
    """What the render knows of the cluster the stack deploys to."""

    facts: ClusterFacts | None
    """Version and API versions; None when no cluster answered (then rendered with `helm template`)."""
    releases: Mapping[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    """(namespace, release) -> latest Helm revision and its status."""
    offline_version: str = "v1.36.3"
    """Kubernetes version `helm template` renders for when no cluster answers (offline_kube_version)."""

    @property
    def reachable(self) -> bool:
        return self.facts is not None


@dataclass(frozen=True)
class Rendered:
    """One release rendered and compared with what runs."""

    name: str
    namespace: str
    mode: str
    """server (a server-side dry run) or template."""
    latest: tuple[int, str] | None
    """Helm's latest revision and status, None when not installed."""
    revision: int | None
    """The revision compared with (the one that runs); None when nothing runs."""
    diff: ObjectsDiff
    cached: bool = False

    def summary(self) -> str:
        """`prometheus: 1 to add, 2 to change, 0 to remove (helm dry run against revision 3)`."""
        added, changed, removed = self.diff.counts()
        against = f"revision {self.revision}" if self.revision is not None else "nothing installed"
        how = "helm dry run on the cluster" if self.mode == "server" else "helm template"
        return f"{self.name}: {added} to add, {changed} to change, {removed} to remove ({how}, against {against})"


def render_releases(root: Path, deployment: Deployment, secrets: Mapping[str, str], cluster: Cluster,
                    names: Iterable[str] | None = None, workers: int = WORKERS, timeout_s: float = TIMEOUT_S) -> dict[str, Rendered]:
    """Render the releases (default: every enabled one), from the cache where the inputs are unchanged.

    secrets: secret config key -> plain value. Raises InputError naming every
    release Helm refused, with Helm's whole message; nothing is cached for it.
    """
    results, problems = render_each(root, deployment, secrets, cluster, names, workers, timeout_s)
    if problems:
        raise InputError(*(p for found in problems.values() for p in found))
    return results


def render_each(root: Path, deployment: Deployment, secrets: Mapping[str, str], cluster: Cluster, names: Iterable[str] | None = None,
                workers: int = WORKERS, timeout_s: float = TIMEOUT_S) -> tuple[dict[str, Rendered], dict[str, list[str]]]:
    """render_releases without raising: (rendered by release, problems by release), both in the order asked."""
    wanted = list(names) if names is not None else list(deployment.releases)
    cache = root / CACHE_DIR
    key = _machine_key(cache)
    binary = helm.helm_identity()
    results: dict[str, Rendered] = {}
    problems: dict[str, list[str]] = {}

    def one(name: str) -> None:
        release = deployment.releases[name]
        values = full_values(release, secrets)
        known = sorted({str(v) for v in (secrets.get(k) for k in release.secret_paths.values()) if v})
        digest = input_digest(release, values, cluster, key, binary)
        hit = _load(cache / f"{digest}.json", release, cluster)
        if hit is not None:
            results[name] = hit
            return
        try:
            result = _render(root, release, values, known, cluster, timeout_s)
        except helm.RenderError as error:
            refused = refused_problems(str(error))
            problems[name] = [failure(release, scrub(str(error), known))] if refused is None else \
                [f"release {name!r}: {scrub(p, known)}" for p in refused]
            return
        except (ToolError, yaml.YAMLError, ValueError) as error:
            problems[name] = [f"release {release.name!r}: could not be rendered: {scrub(str(error), known)}"]
            return
        _store(cache / f"{digest}.json", result)
        results[name] = result

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(wanted) or 1)), thread_name_prefix="helm-render") as pool:
        list(pool.map(one, wanted))
    return {n: results[n] for n in wanted if n in results}, {n: problems[n] for n in wanted if n in problems}


def full_values(release: ResolvedRelease, secrets: Mapping[str, str]) -> dict[str, Any]:
    """The release's values with its secrets in place, as Helm gets them."""
    values = json.loads(json.dumps(release.values))
    for path, config_key in release.secret_paths.items():
        if config_key in secrets:
            set_path(values, path, secrets[config_key])
    return dict(values)


def input_digest(release: ResolvedRelease, values: Mapping[str, Any], cluster: Cluster, machine_key: bytes, helm_binary: str) -> str:
    """The cache key of one render: every input Helm's output depends on (see the module docstring)."""
    facts = cluster.facts
    inputs = {
        "format": FORMAT,
        "release": [release.name, release.namespace],
        "chart": release.chart_digest,
        "values": hmac.new(machine_key, _canonical(values).encode(), hashlib.sha256).hexdigest(),
        "helm": asdict(release.helm),
        "postrender": [release.postrender.description(), release.postrender.arguments()] if release.postrender else None,
        "cluster": [facts.kube_version, list(facts.api_versions)] if facts else ["offline", cluster.offline_version],
        "latest": list(cluster.releases.get((release.namespace, release.name)) or []),
        "helmBinary": helm_binary,
    }
    return hashlib.sha256(_canonical(inputs).encode()).hexdigest()


def failure(release: ResolvedRelease, message: str) -> str:
    """A refused render: the release, the chart, the values path where Helm names one, and Helm's whole message."""
    path = values_path(message)
    where = f" at values path {path}" if path else ""
    return (f"release {release.name!r} (chart {release.chart_name} {release.chart_version}): Helm cannot render it{where}; "
            f"fix the values in values/{release.name}.yaml or the stack's releases.{release.name}.values. Helm says:\n{message}")


_SCHEMA_AT = re.compile(r"at '(/[^']*)'")
_SCHEMA_DASH = re.compile(r"^- ([A-Za-z0-9_.\-\[\]]+): ", re.MULTILINE)
_TEMPLATE_AT = re.compile(r"<\.Values\.([A-Za-z0-9_.]+)>")


def values_path(message: str) -> str | None:
    """The values path Helm's message names (schema `at '/a/b'` or `- a.b:`, template `<.Values.a.b>`), if any."""
    for pattern in (_SCHEMA_AT, _TEMPLATE_AT, _SCHEMA_DASH):
        match = pattern.search(message)
        if match:
            found = match[1]
            if found.startswith("/"):
                found = ".".join(p for p in found.split("/") if p)
            if found and found != "(root)":
                return found
    return None


# --- one render ---------------------------------------------------------------------

def _render(root: Path, release: ResolvedRelease, values: dict[str, Any], known_secrets: list[str], cluster: Cluster,
            timeout_s: float) -> Rendered:
    latest = cluster.releases.get((release.namespace, release.name))
    request = helm.RenderRequest(name=release.name, namespace=release.namespace, chart=root / release.chart_path, values=values,
                                 postrender=str(write_wrapper(release.postrender)) if release.postrender else None)
    text, mode = _helm(request, cluster, installed=latest is not None, root=root, timeout_s=timeout_s)
    desired = parse_manifest(text)
    revision: int | None = None
    live: dict[ObjectKey, dict[str, Any]] = {}
    masked = list(known_secrets)
    if latest is not None:
        record = helm.HelmRelease(release.namespace, release.name, latest[0], latest[1])
        revision = helm.deployed_revision(record, timeout_s)
    if revision is None:
        return Rendered(name=release.name, namespace=release.namespace, mode=mode, latest=latest, revision=None, diff=diff_objects({}, desired))
    recorded = helm.revision_record(release.namespace, release.name, revision, timeout_s)
    masked += helm.secret_values_at(recorded.values, release.secret_paths)
    if latest == (revision, "deployed") and _canonical(recorded.values) == _canonical(values) and \
            recorded.description == release_description(release.chart_version, release.chart_digest, release.postrender):
        # The revision that runs has exactly these inputs: `up` upgrades nothing, so nothing changes,
        # whatever a chart generates anew on each render (certificates, random keys and their checksums).
        return Rendered(name=release.name, namespace=release.namespace, mode=mode, latest=latest, revision=revision, diff=ObjectsDiff())
    live = parse_manifest(recorded.manifest)
    return Rendered(name=release.name, namespace=release.namespace, mode=mode, latest=latest, revision=revision,
                    diff=diff_objects(live, desired, masked))


def _helm(request: helm.RenderRequest, cluster: Cluster, installed: bool, root: Path, timeout_s: float) -> tuple[str, str]:
    facts = cluster.facts
    if facts is None:
        return helm.render_template(request, cluster.offline_version, (), installed, timeout_s, cwd=root), "template"
    try:
        return helm.render_server(request, timeout_s, cwd=root), "server"
    except helm.RenderError as error:
        install_only = (CRDS_FIRST, f'namespaces "{request.namespace}" not found')
        if installed or not any(text in str(error) for text in install_only):
            raise
    # Helm installs a chart's CRDs (and `up` the namespace) before it renders; a dry run cannot.
    return helm.render_template(request, facts.kube_version, facts.api_versions, False, timeout_s, cwd=root), "template"


# --- the cache ------------------------------------------------------------------------

def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _machine_key(cache: Path) -> bytes:
    """This machine's HMAC key for values digests (created 0600 on first use)."""
    path = cache / "key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    cache.mkdir(parents=True, exist_ok=True)
    fresh = secrets_module.token_hex(32)
    temporary = path.with_name(f".key.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(fresh)
    try:
        os.link(temporary, path)  # the first writer wins; every process then reads the same key
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def _store(path: Path, result: Rendered) -> None:
    data = {
        "format": FORMAT, "name": result.name, "mode": result.mode, "revision": result.revision,
        "added": [list(k) for k in result.diff.added], "removed": [list(k) for k in result.diff.removed],
        "changed": [[list(k), [[c.path, c.kind, None if c.before is ABSENT else c.before, None if c.after is ABSENT else c.after]
                               for c in changes]] for k, changes in result.diff.changed.items()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, sort_keys=True))
    temporary.replace(path)


def _load(path: Path, release: ResolvedRelease, cluster: Cluster) -> Rendered | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != FORMAT or data.get("name") != release.name:
        return None

    def key(item: list[str]) -> ObjectKey:
        return (item[0], item[1], item[2], item[3])

    diff = ObjectsDiff(added=[key(k) for k in data["added"]], removed=[key(k) for k in data["removed"]])
    for item, changes in data["changed"]:
        diff.changed[key(item)] = [Change(p, ABSENT if kind == "added" else before, ABSENT if kind == "removed" else after)
                                   for p, kind, before, after in changes]
    return Rendered(name=release.name, namespace=release.namespace, mode=str(data["mode"]),
                    latest=cluster.releases.get((release.namespace, release.name)), revision=data["revision"], diff=diff, cached=True)


def revisions_table(text: str | None) -> dict[tuple[str, str], tuple[int, str]]:
    """The latest revision and status per release from the pending check's kubectl table (empty without one)."""
    from cli.pending import parse_release_table

    return parse_release_table(text) if text else {}


def offline_kube_version(root: Path) -> str:
    """The Kubernetes version the toolchain pins (the local cluster's), for a render without a cluster."""
    import tomllib

    try:
        tools = tomllib.loads((root / "toolchain" / "tools.toml").read_text())
        return str(tools["module"]["kubernetes"]["version"])
    except (OSError, KeyError, ValueError):
        return Cluster(facts=None).offline_version


def render_for_program(root: Path, deployment: Deployment, secrets: Mapping[str, str], pending: Any,
                       facts: Future[ClusterFacts | None], warn: Callable[[str], None]) -> list[str]:
    """The program's render: every enabled release, before anything registers; the summary line of each release that changes.

    pending: the started PendingQuery (its table gives the latest revisions); facts: the started cluster_facts.
    Raises InputError when Helm refuses a release.
    """
    started = time.monotonic()
    answer = pending.result
    table = answer.stdout if answer is not None and answer.returncode == 0 else None
    found = facts.result()
    if found is None:
        warn("no cluster answered: the releases are rendered with `helm template` (no lookup, the toolchain's Kubernetes version)")
    revisions = revisions_table(table)
    if found is not None and table is None:
        # The pending check could not ask (no kubectl on PATH): the pinned one answers the same table.
        try:
            revisions = helm_revisions(20.0)
        except ToolError as error:
            warn(f"the Helm revisions could not be read ({error}): every release is compared as if not installed")
    cluster = Cluster(facts=found, releases=revisions, offline_version=offline_kube_version(root))
    rendered = render_releases(root, deployment, secrets, cluster)
    lines = [r.summary() for r in rendered.values() if r.diff.differs]
    if os.environ.get("ASTRAGO_RENDER_TIMING"):
        cached = sum(1 for r in rendered.values() if r.cached)
        lines.append(f"render: {len(rendered)} release(s), {cached} from the cache, {time.monotonic() - started:.3f} s")
    return lines
