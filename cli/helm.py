"""Helm's record of the releases, read with the pinned helm."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.process import run, tool
from model.values import get_path


@dataclass(frozen=True)
class HelmRelease:
    """The latest revision Helm holds for a release."""

    namespace: str
    name: str
    revision: int
    status: str


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


def release_manifest(namespace: str, name: str, revision: int, timeout_s: float) -> str:
    """The manifest and hooks Helm recorded for one revision (what it applied), as one YAML stream."""
    template = '{{.Release.Manifest}}{{range .Release.Hooks}}{{"\\n---\\n"}}{{.Manifest}}{{end}}'
    return run([tool("helm"), "get", "all", name, "--namespace", namespace, "--revision", str(revision), "--template", template], timeout_s).stdout


def release_secret_values(namespace: str, name: str, revision: int, secret_paths: Iterable[str], timeout_s: float) -> list[str]:
    """The secret values a revision was installed with (at the release's declared secret paths), for masking only."""
    paths = list(secret_paths)
    if not paths:
        return []
    out = run([tool("helm"), "get", "values", name, "--namespace", namespace, "--revision", str(revision), "--output", "json"], timeout_s).stdout
    values = json.loads(out or "{}") or {}
    found = [get_path(values, path) for path in paths]
    return [str(v) for v in found if v is not None and not isinstance(v, dict | list)]


def template(name: str, chart: str, namespace: str, values_yaml: str, timeout_s: float, *,
             cwd: Path | None = None, post_renderer: str | None = None, skip_tests: bool = True) -> str:
    """`helm template` of one release, values on stdin (never on disk): the objects an install applies, hooks included (chart tests with skip_tests=False)."""
    command = [tool("helm"), "template", name, chart, "--namespace", namespace, "--values", "-"]
    if skip_tests:
        command.append("--skip-tests")
    if post_renderer:
        command += ["--post-renderer", post_renderer]
    return run(command, timeout_s, stdin=values_yaml, cwd=cwd).stdout


def show_chart(chart: str, timeout_s: float, *, cwd: Path | None = None) -> dict[str, Any]:
    """A chart's Chart.yaml as Helm reads it (folder or archive)."""
    loaded = yaml.safe_load(run([tool("helm"), "show", "chart", chart], timeout_s, cwd=cwd).stdout) or {}
    return loaded if isinstance(loaded, dict) else {}
