"""The release catalog: load ``catalog/releases.yaml`` into typed records.

Every check here runs before Pulumi registers anything; an error names the
file, the release and the key, and says what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from model import schemas
from model.derived import check_spec
from model.errors import InputError
from model.yamlload import Document, KeyPath, load_file

PLATFORM_SETTINGS = ("storageClass", "nfs.server", "nfs.path", "externalIP", "domain", "imageRegistry", "fileServer")
# Helm's own default for --timeout.
DEFAULT_TIMEOUT = "300s"


@dataclass(frozen=True)
class HelmOptions:
    """How Helm installs and upgrades one release (mapped onto helm.v3.Release)."""

    timeout_s: int
    """helm --timeout, in seconds: how long Helm waits for the release to become ready."""
    wait: bool
    """helm --wait: wait for workloads to be ready before marking the release deployed."""
    wait_for_jobs: bool
    """helm --wait-for-jobs: also wait for Jobs to complete."""
    atomic: bool
    """helm --atomic: a failed install is uninstalled and a failed upgrade rolled back."""
    cleanup_on_fail: bool
    """helm --cleanup-on-fail: delete resources created by a failed upgrade."""
    max_history: int
    """helm --history-max: revisions Helm keeps; rollback needs at least two."""
    drift_mode: str
    """helm.drift: what `make drift` does on drift of this release: fail, warn or ignore."""


@dataclass(frozen=True)
class Need:
    """A dependency on another release, optionally wiring its endpoint into values."""

    release: str
    """Name of the release needed."""
    inject: dict[str, str] = field(default_factory=dict)
    """Values path in the dependant -> endpoint key of the needed release."""


@dataclass(frozen=True)
class Hook:
    """A step run in the dependency graph next to a release (Helmfile's hooks)."""

    name: str
    """Unique within the release."""
    when: str
    """preInstall: before the release is installed; preDelete: before it is removed."""
    check: str | None = None
    """Built-in check for preInstall hooks (node-label)."""
    label: str | None = None
    """For the node-label check: key=value that at least one node must carry."""
    delay_s: int = 0
    """For preDelete hooks: seconds to wait before the release is removed."""


@dataclass(frozen=True)
class ChartRef:
    """Where a release's chart comes from: a chart of this repo or a locked archive."""

    kind: Literal["local", "external"]
    """local: charts/own/<name>; external: charts/external/<name>-<version>.tgz."""
    name: str
    """Chart directory name (local) or declared chart name (external)."""


@dataclass(frozen=True)
class Release:
    """One entry of the catalog."""

    name: str
    tier: str
    namespace: str
    chart: ChartRef
    needs: tuple[Need, ...]
    enabled: bool
    helm: HelmOptions
    endpoint: dict[str, str]
    settings: dict[str, str]
    secrets: dict[str, str]
    hooks: tuple[Hook, ...]
    patches: bool
    helm_spec: dict[str, Any] = field(default_factory=dict)
    """The catalog defaults merged with this release's `helm` block, before parsing (a stack lays its own over it)."""
    undeclared_values: tuple[str, ...] = ()
    """Values paths the chart reads although its values.yaml and schema do not declare them (each allows its subtree)."""


@dataclass(frozen=True)
class Catalog:
    """All releases, in catalog order, and the tier order."""

    tiers: tuple[str, ...]
    releases: tuple[Release, ...]
    source: str = "catalog/releases.yaml"

    def by_name(self) -> dict[str, Release]:
        return {r.name: r for r in self.releases}

    def secret_keys(self) -> tuple[str, ...]:
        """Every secret config key any release reads, sorted."""
        return tuple(sorted({k for r in self.releases for k in r.secrets.values()}))


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog file (schemas/catalog.schema.json, then the checks that need the whole catalog)."""
    document = load_file(path, source=str(path))
    schemas.check("catalog", document)
    return parse_catalog(document.data, str(path), checked=True, where=document.where)


def parse_catalog(data: Any, source: str, checked: bool = False, where: Callable[[KeyPath], str] | None = None) -> Catalog:
    """Validate catalog data already parsed from YAML (checked: it already passed the schema).

    where: `<file> line <n>` of a key path, when the file's lines are known.
    """
    if not checked:
        schemas.check("catalog", Document(source=source, data=data))
    at = where or (lambda _path: source)
    tiers = tuple(data["tiers"])
    defaults = (data.get("defaults") or {}).get("helm") or {}
    releases: list[Release] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["releases"]):
        if raw["tier"] not in tiers:
            raise InputError(f"{at(('releases', index, 'tier'))}: release {raw['name']!r}: tier {raw['tier']!r} is not one of {list(tiers)}")
        release = _parse_release(raw, defaults, source)
        if release.name in seen:
            raise InputError(f"{at(('releases', index, 'name'))}: release {release.name!r} is declared twice; release names must be unique")
        seen.add(release.name)
        releases.append(release)
    return Catalog(tiers=tiers, releases=tuple(releases), source=source)


def _parse_release(raw: dict[str, Any], defaults: dict[str, Any], source: str) -> Release:
    name = raw["name"]
    where = f"{source}: release {name!r}"
    kind, chart_name = next(iter(raw["chart"].items()))
    # A setting is a platform setting's name or a template of them (model/derived.py).
    for values_path, setting in (raw.get("settings") or {}).items():
        problem = check_spec(setting, PLATFORM_SETTINGS)
        if problem:
            raise InputError(f"{where}: settings.{values_path} {problem}")
    return Release(
        name=name,
        tier=raw["tier"],
        namespace=raw["namespace"],
        chart=ChartRef(kind=kind, name=str(chart_name)),
        needs=tuple(_parse_need(n) for n in raw.get("needs") or []),
        enabled=raw.get("enabled", True),
        helm=parse_helm_options(defaults, raw.get("helm") or {}, where),
        helm_spec=_merged(defaults, raw.get("helm") or {}),
        endpoint=dict(raw.get("endpoint") or {}),
        settings=dict(raw.get("settings") or {}),
        secrets=dict(raw.get("secrets") or {}),
        hooks=tuple(_parse_hook(h) for h in raw.get("hooks") or []),
        patches=raw.get("patches", False),
        undeclared_values=tuple(raw.get("undeclaredValues") or ()),
    )


def _parse_need(raw: str | dict[str, Any]) -> Need:
    if isinstance(raw, str):
        return Need(release=raw)
    return Need(release=raw["release"], inject=dict(raw.get("inject") or {}))


def _parse_hook(raw: dict[str, Any]) -> Hook:
    return Hook(name=raw["name"], when=raw["when"], check=raw.get("check"), label=raw.get("label"), delay_s=raw.get("delay_s", 0))


def parse_helm_options(defaults: dict[str, Any], override: dict[str, Any], where: str) -> HelmOptions:
    """Merge a release's `helm` block over the catalog defaults and validate it.

    The names are Helm's flags (schemas/helm-options.schema.json); a name of
    the Flux-shaped format used before is refused with the name that replaced it.
    """
    from model.values import deep_merge  # local import: values imports nothing from here

    merged = deep_merge(defaults, override)
    schemas.check("helm-options", Document(source=where, data=merged), label="helm")
    options = HelmOptions(
        timeout_s=schemas.duration_seconds(merged.get("timeout", DEFAULT_TIMEOUT)),
        wait=merged.get("wait", True),
        wait_for_jobs=merged.get("waitForJobs", True),
        atomic=merged.get("atomic", True),
        cleanup_on_fail=merged.get("cleanupOnFail", True),
        max_history=merged.get("maxHistory", 10),
        drift_mode=merged.get("drift", "fail"),
    )
    if options.atomic and not options.wait:
        raise InputError(f"{where}: helm.atomic is true and helm.wait false, but Helm's --atomic always waits (it sets --wait); set wait: true, or atomic: false")
    if options.wait_for_jobs and not options.wait:
        raise InputError(f"{where}: helm.waitForJobs is true and helm.wait false; Helm waits for Jobs only with --wait: set wait: true, or waitForJobs: false")
    return options


def _str_list(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise InputError(f"{where} must be a list of values paths (a.b.c)")
    return tuple(raw)


def _merged(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    from model.values import deep_merge

    return deep_merge(defaults, override)
