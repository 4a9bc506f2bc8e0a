"""The pinned helm: its record of the releases, and the renders preview, diff and up rely on."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.process import ToolError, run, tool
from model.values import get_path


@dataclass(frozen=True)
class HelmRelease:
    """The latest revision Helm holds for a release."""

    namespace: str
    name: str
    revision: int
    status: str


def helm_identity() -> str:
    """Size and mtime of the pinned helm binary: a rebuilt helm invalidates what it rendered ("missing" when there is none)."""
    try:
        info = os.stat(tool("helm"))
    except (ToolError, OSError):
        return "missing"
    return f"{info.st_size}:{info.st_mtime_ns}"


def helm_releases(names: Iterable[str], timeout_s: float) -> dict[tuple[str, str], HelmRelease]:
    """(namespace, name) -> latest revision of every Helm release with one of these names, in any status."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    pattern = "^(" + "|".join(wanted) + ")$"
    out = run([tool("helm"), "list", "--all-namespaces", "--all", "--output", "json", "--max", "10000", "--filter", pattern], timeout_s).stdout
    rows = json.loads(out or "[]")
    return {(r["namespace"], r["name"]): HelmRelease(r["namespace"], r["name"], int(r["revision"]), r["status"]) for r in rows}


def helm_history(namespace: str, name: str, timeout_s: float) -> list[tuple[int, str]]:
    """(revision, status) of every revision Helm keeps for a release, oldest first."""
    out = run([tool("helm"), "history", name, "--namespace", namespace, "--output", "json", "--max", "10000"], timeout_s).stdout
    return sorted((int(r["revision"]), r["status"]) for r in json.loads(out or "[]"))


def deployed_revision(release: HelmRelease, timeout_s: float) -> int | None:
    """The revision that runs: the latest if deployed, else the newest one Helm marks deployed (None: never deployed)."""
    if release.status == "deployed":
        return release.revision
    deployed = [rev for rev, status in helm_history(release.namespace, release.name, timeout_s) if status == "deployed"]
    return max(deployed) if deployed else None


@dataclass(frozen=True)
class Revision:
    """What Helm recorded for one revision of a release (`helm status --revision N -o json`, the chart left out)."""

    values: dict[str, Any]
    """The user-supplied values, secrets included: keep them in memory only."""
    description: str
    """The description (the program writes chart version, digest and post-render there)."""
    manifest: str
    """The manifest and the hooks Helm applied, as one YAML stream."""


def revision_record(namespace: str, name: str, revision: int, timeout_s: float) -> Revision:
    """One revision's values, description, manifest and hooks in one helm call (Helm's status omits the chart)."""
    out = run([tool("helm"), "status", name, "--namespace", namespace, "--revision", str(revision), "--output", "json"], timeout_s).stdout
    data = json.loads(out or "{}") or {}
    values = data.get("config") or {}
    hooks = "".join("\n---\n" + str(hook.get("manifest") or "") for hook in data.get("hooks") or [])
    return Revision(values=values if isinstance(values, dict) else {}, description=str((data.get("info") or {}).get("description") or ""),
                    manifest=str(data.get("manifest") or "") + hooks)


def revision_manifest(namespace: str, name: str, revision: int, timeout_s: float) -> str:
    """The objects Helm applied for a revision, without its hooks (`helm get manifest`)."""
    return run([tool("helm"), "get", "manifest", name, "--namespace", namespace, "--revision", str(revision)], timeout_s).stdout


def uninstall(namespace: str, name: str, timeout_s: float) -> None:
    """`helm uninstall --wait`: the release and its objects are gone when this returns."""
    run([tool("helm"), "uninstall", name, "--namespace", namespace, "--wait", "--timeout", f"{int(timeout_s)}s"], timeout_s + 30)


def rollback(namespace: str, name: str, revision: int, timeout_s: float) -> None:
    """`helm rollback --wait` to an earlier revision."""
    run([tool("helm"), "rollback", name, str(revision), "--namespace", namespace, "--wait", "--timeout", f"{int(timeout_s)}s"], timeout_s + 30)


def secret_values_at(values: Mapping[str, Any], secret_paths: Iterable[str]) -> list[str]:
    """The values at the declared secret paths, for masking only."""
    found = [get_path(values, path) for path in secret_paths]
    return [str(v) for v in found if v is not None and not isinstance(v, dict | list)]


# --- rendering ----------------------------------------------------------------------

class RenderError(RuntimeError):
    """Helm refused to render a release (schema, template, required value); the message is Helm's, whole."""


@dataclass(frozen=True)
class RenderRequest:
    """One release to render, as `up` would install or upgrade it."""

    name: str
    namespace: str
    chart: Path
    """Chart folder or archive (absolute, or relative to cwd)."""
    values: Mapping[str, Any]
    """Every value, secrets included: written to a 0600 file deleted after the call, never on argv."""
    postrender: str | None = None
    """Post-renderer executable, as the provider runs it."""


def render_server(request: RenderRequest, timeout_s: float, cwd: Path | None = None) -> str:
    """`helm upgrade --install --dry-run=server`: what an upgrade (or install) would apply, as helm-diff renders it.

    Helm asks the cluster for its capabilities (Kind-level API versions too) and
    answers `lookup` from it, so generated secrets kept by lookup come out as
    they run. Returns the manifest and the hooks as one YAML stream.
    """
    with _values_file(request.values) as values:
        command = [tool("helm"), "upgrade", request.name, str(request.chart), "--install", "--namespace", request.namespace,
                   "--values", str(values), "--dry-run=server", "--output", "json"]
        command += _postrender_args(request)
        result = run(command, timeout_s, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RenderError(helm_message(result.stderr))
    release = json.loads(result.stdout)
    hooks = "".join(f"\n---\n{hook.get('manifest', '')}" for hook in release.get("hooks") or [])
    return str(release.get("manifest") or "") + hooks


def render_template(request: RenderRequest, kube_version: str, api_versions: Sequence[str], upgrade: bool, timeout_s: float,
                    cwd: Path | None = None) -> str:
    """`helm template` with the given capabilities (no cluster asked; `lookup` finds nothing)."""
    with _values_file(request.values) as values:
        command = [tool("helm"), "template", request.name, str(request.chart), "--namespace", request.namespace,
                   "--values", str(values), "--kube-version", kube_version]
        command += [f"--api-versions={api}" for api in api_versions]
        if upgrade:
            command.append("--is-upgrade")
        command += _postrender_args(request)
        result = run(command, timeout_s, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RenderError(helm_message(result.stderr))
    return result.stdout


def helm_message(stderr: str) -> str:
    """Helm's error, whole: its `Error: ` prefix dropped, debug and warning lines kept out."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith(("WARNING: ", "walk.go:", "install.go:", "upgrade.go:"))]
    text = "\n".join(lines).strip()
    return text.removeprefix("Error: ") or stderr.strip() or "helm failed without a message"


def _postrender_args(request: RenderRequest) -> list[str]:
    return ["--post-renderer", request.postrender] if request.postrender else []


@contextmanager
def _values_file(values: Mapping[str, Any]) -> Iterator[Path]:
    """The values as a file only its owner can read, removed when done (secrets never reach argv or logs)."""
    descriptor, name = tempfile.mkstemp(prefix="astrago-values-", suffix=".json")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w") as stream:
            json.dump(values, stream)
        yield path
    finally:
        path.unlink(missing_ok=True)


def template(name: str, chart: str, namespace: str, values_yaml: str, timeout_s: float, *,
             cwd: Path | None = None, post_renderer: str | None = None, skip_tests: bool = True) -> str:
    """`helm template` of one release, values on stdin (never on disk): the objects an install applies, hooks included (chart tests with skip_tests=False)."""
    command = [tool("helm"), "template", name, chart, "--namespace", namespace, "--values", "-"]
    if skip_tests:
        command.append("--skip-tests")
    if post_renderer:
        command += ["--post-renderer", post_renderer]
    return run(command, timeout_s, stdin=values_yaml, cwd=cwd).stdout


def show_values(chart: str, timeout_s: float, *, cwd: Path | None = None) -> dict[str, Any]:
    """A chart's own values.yaml as Helm reads it (folder or archive)."""
    loaded = yaml.safe_load(run([tool("helm"), "show", "values", chart], timeout_s, cwd=cwd).stdout) or {}
    return loaded if isinstance(loaded, dict) else {}


def show_chart(chart: str, timeout_s: float, *, cwd: Path | None = None) -> dict[str, Any]:
    """A chart's Chart.yaml as Helm reads it (folder or archive)."""
    loaded = yaml.safe_load(run([tool("helm"), "show", "chart", chart], timeout_s, cwd=cwd).stdout) or {}
    return loaded if isinstance(loaded, dict) else {}
