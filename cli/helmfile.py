"""The pinned Helmfile, run on a site's Helmfile folder: its releases as Helmfile resolves them, and their manifests.

Helmfile is a bench-only tool (toolchain/tools.toml `bench_only`): `make setup`
does not build it; the first command that needs it builds it with the same
step as `make bench-setup` (toolchain/build_tools.py helmfile), once.
Helmfile runs with the pinned helm (`--helm-binary`), Helm's homes in a
scratch folder, and no update check: nothing on this machine or the network
changes what it resolves.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cli.process import ROOT, TOOLS, ToolError, run, tool
from model.values import deep_merge

STATE_FILES = ("helmfile.yaml.gotmpl", "helmfile.yaml", "helmfile.d")
# A cold build of Helmfile and its dependencies on two busy cores.
BUILD_TIMEOUT_S = 60 * 60
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class HelmfileRelease:
    """One release as Helmfile resolves it for an environment (`helmfile build --embed-values`)."""

    name: str
    namespace: str
    chart: str
    installed: bool
    values: list[dict[str, Any]]
    """Helmfile's values entries, rendered, in order (Helm lays them over each other)."""
    needs: tuple[str, ...] = ()
    hooks: tuple[dict[str, Any], ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    """Every other field Helmfile holds for the release (labels, wait, timeout, set, ...)."""

    def merged_values(self) -> dict[str, Any]:
        """The values entries laid over each other, as Helm coalesces several --values files."""
        merged: dict[str, Any] = {}
        for entry in self.values:
            merged = deep_merge(merged, entry)
        return merged


@dataclass(frozen=True)
class HelmfileState:
    """A site's Helmfile state for one environment."""

    releases: list[HelmfileRelease]
    helm_defaults: dict[str, Any]
    other: dict[str, Any]
    """Top-level keys besides releases and helmDefaults (repositories, hooks, ...)."""


def helmfile_binary() -> str:
    """The pinned Helmfile, built first when missing (a few minutes, once)."""
    try:
        return tool("helmfile")
    except ToolError:
        pass
    print(f"helmfile is not built yet: building the pinned version into {TOOLS} (toolchain/build_tools.py helmfile; "
          "a few minutes, once)", file=sys.stderr, flush=True)
    run([sys.executable, str(ROOT / "toolchain" / "build_tools.py"), "helmfile"], BUILD_TIMEOUT_S)
    return tool("helmfile")


def state_file(folder: Path) -> Path:
    """The Helmfile state of a site folder (helmfile.yaml.gotmpl, helmfile.yaml or helmfile.d)."""
    for name in STATE_FILES:
        if (folder / name).exists():
            return folder / name
    raise ToolError(f"{folder}: no {' / '.join(STATE_FILES)}; DIR must be the folder holding the site's Helmfile")


@contextmanager
def _environment() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="astrago-helmfile-") as scratch:
        home = Path(scratch)
        yield {
            **os.environ,
            "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}",
            "HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home / "cache"), "HELM_DATA_HOME": str(home / "data"),
            # Otherwise Helmfile asks the internet for a newer release.
            "HELMFILE_UPGRADE_NOTICE_DISABLED": "1",
            "HELMFILE_TEMPDIR": str(home / "tmp"),
        }


def _command(folder: Path, environment: str, *args: str) -> list[str]:
    return [helmfile_binary(), "--file", str(state_file(folder)), "--environment", environment,
            "--helm-binary", tool("helm"), "--no-color", *args]


def build(folder: Path, environment: str, timeout_s: float = TIMEOUT_S) -> HelmfileState:
    """The site's state for an environment with every values file rendered and embedded."""
    with _environment() as env:
        (Path(env["HELMFILE_TEMPDIR"])).mkdir(parents=True, exist_ok=True)
        out = run(_command(folder, environment, "build", "--embed-values"), timeout_s, cwd=folder, env=env).stdout
    documents = [d for d in yaml.safe_load_all(out) if isinstance(d, dict)]
    releases: list[HelmfileRelease] = []
    helm_defaults: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for document in documents:
        helm_defaults.update(document.get("helmDefaults") or {})
        for key, value in document.items():
            if key not in ("releases", "helmDefaults", "environments", "bases", "templates", "missingFileHandler",
                           "missingFileHandlerConfig", "renderedvalues", "values") and value not in (None, {}, []):
                other[key] = value
        for raw in document.get("releases") or []:
            releases.append(_release(raw))
    return HelmfileState(releases=releases, helm_defaults=helm_defaults, other=other)


def _release(raw: dict[str, Any]) -> HelmfileRelease:
    values = [v for v in raw.get("values") or [] if isinstance(v, dict)]
    unread = [v for v in raw.get("values") or [] if not isinstance(v, dict)]
    fields = {k: v for k, v in raw.items() if k not in ("name", "namespace", "chart", "installed", "values", "needs", "hooks")}
    if unread:
        fields["values (not embedded)"] = unread
    installed = raw.get("installed")
    return HelmfileRelease(
        name=str(raw["name"]), namespace=str(raw.get("namespace") or ""), chart=str(raw.get("chart") or ""),
        installed=installed is None or bool(installed), values=values, needs=tuple(str(n) for n in raw.get("needs") or []),
        hooks=tuple(h for h in raw.get("hooks") or [] if isinstance(h, dict)), fields=fields,
    )


def template(folder: Path, environment: str, kube_version: str, timeout_s: float = TIMEOUT_S) -> dict[tuple[str, str], str]:
    """(namespace, name) -> the manifests `helmfile template` renders for each installed release (the pinned helm, these capabilities)."""
    with _environment() as env, tempfile.TemporaryDirectory(prefix="astrago-helmfile-out-") as out:
        (Path(env["HELMFILE_TEMPDIR"])).mkdir(parents=True, exist_ok=True)
        run(_command(folder, environment, "template", "--skip-deps", "--output-dir", out,
                     "--output-dir-template", "{{ .OutputDir }}/{{ .Release.Namespace }}/{{ .Release.Name }}",
                     "--kube-version", kube_version), timeout_s, cwd=folder, env=env)
        rendered: dict[tuple[str, str], str] = {}
        root = Path(out)
        for namespace_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for release_dir in sorted(p for p in namespace_dir.iterdir() if p.is_dir()):
                files = sorted(release_dir.rglob("*.yaml"))
                rendered[(namespace_dir.name, release_dir.name)] = "\n---\n".join(f.read_text() for f in files)
        return rendered
