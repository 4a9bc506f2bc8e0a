"""The release catalog: load ``catalog/releases.yaml`` into typed records.

Every check here runs before Pulumi registers anything; an error names the
file, the release and the key, and says what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from model.derived import check_spec
from model.errors import InputError
from model.yamlload import safe_load

HOOK_WHEN = ("preInstall", "preDelete")
HOOK_CHECKS = ("node-label",)
# Resource type of a hook: the only type of this project's hooks provider
# (toolchain/go/hooks-provider); part of every hook's URN.
HOOK_RESOURCE_TYPE = "astrago-hooks:index:Hook"
DRIFT_MODES = ("enabled", "warn", "disabled")
REMEDIATION_STRATEGIES = ("rollback", "none")
PLATFORM_SETTINGS = ("storageClass", "nfs.server", "nfs.path", "externalIP", "domain", "imageRegistry", "fileServer")
RELEASE_KEYS = {"name", "tier", "namespace", "chart", "needs", "enabled", "endpoint", "settings", "secrets", "helm", "hooks", "patches",
                "undeclaredValues"}
# The keys of a `helm` block (catalog defaults, a release, a stack override), nested as they nest.
HELM_OPTION_KEYS: dict[str, Any] = {
    "timeout": None, "maxHistory": None,
    "install": {"disableWait": None, "disableWaitForJobs": None, "remediation": {"retries": None}},
    "upgrade": {"cleanupOnFail": None, "remediation": {"strategy": None}},
    "driftDetection": {"mode": None},
}
# Kubernetes names: release and namespace names become object names.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")
DURATION = re.compile(r"^(\d+)(s|m|h)$")


@dataclass(frozen=True)
class HelmOptions:
    """How Helm installs and upgrades one release (mapped onto helm.v3.Release)."""

    timeout_s: int
    """Seconds Helm waits for the release to become ready."""
    wait: bool
    """Wait for workloads to be ready before marking the release deployed."""
    wait_for_jobs: bool
    """Also wait for Jobs to complete."""
    atomic: bool
    """A failed install is uninstalled and a failed upgrade rolled back."""
    cleanup_on_fail: bool
    """Delete resources created by a failed upgrade."""
    max_history: int
    """Revisions Helm keeps; rollback needs at least two."""
    drift_mode: str
    """How `make drift` treats this release: enabled, warn or disabled."""


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
    """Read and validate the catalog file."""
    try:
        data = safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: the release catalog is missing") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None
    return parse_catalog(data, str(path))


def parse_catalog(data: Any, source: str) -> Catalog:
    """Validate catalog data already parsed from YAML."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with keys tiers, defaults, releases")
    tiers = data.get("tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) for t in tiers):
        raise InputError(f"{source}: `tiers` must be a non-empty list of names")
    defaults = (data.get("defaults") or {}).get("helm") or {}
    raw_releases = data.get("releases")
    if not isinstance(raw_releases, list) or not raw_releases:
        raise InputError(f"{source}: `releases` must be a non-empty list")
    releases: list[Release] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_releases):
        release = _parse_release(raw, index, tuple(tiers), defaults, source)
        if release.name in seen:
            raise InputError(f"{source}: release {release.name!r} is declared twice; release names must be unique")
        seen.add(release.name)
        releases.append(release)
    return Catalog(tiers=tuple(tiers), releases=tuple(releases), source=source)


def _parse_release(raw: Any, index: int, tiers: tuple[str, ...], defaults: dict[str, Any], source: str) -> Release:
    if not isinstance(raw, dict) or "name" not in raw:
        raise InputError(f"{source}: releases[{index}] must be a mapping with a `name`")
    name = raw["name"]
    where = f"{source}: release {name!r}"
    unknown = set(raw) - RELEASE_KEYS
    if unknown:
        raise InputError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(RELEASE_KEYS)}")
    for key in ("name", "namespace"):
        if not isinstance(raw.get(key), str) or not DNS_LABEL.match(raw[key]):
            raise InputError(f"{where}: `{key}` must be a DNS label (lower-case letters, digits, '-', at most 53 characters)")
    if raw.get("tier") not in tiers:
        raise InputError(f"{where}: tier {raw.get('tier')!r} is not one of {list(tiers)}")
    chart = raw.get("chart")
    if not isinstance(chart, dict) or len(chart) != 1 or next(iter(chart)) not in ("local", "external"):
        raise InputError(f"{where}: `chart` must be {{local: <dir under charts/own>}} or {{external: <name in charts/external.yaml>}}")
    kind, chart_name = next(iter(chart.items()))
    needs = tuple(_parse_need(n, where) for n in raw.get("needs") or [])
    settings = _str_map(raw.get("settings"), f"{where}: `settings`")
    for values_path, setting in settings.items():
        problem = check_spec(setting, PLATFORM_SETTINGS)
        if problem:
            raise InputError(f"{where}: settings.{values_path} {problem}")
    return Release(
        name=name,
        tier=raw["tier"],
        namespace=raw["namespace"],
        chart=ChartRef(kind=kind, name=str(chart_name)),
        needs=needs,
        enabled=_bool(raw.get("enabled", True), f"{where}: `enabled`"),
        helm=parse_helm_options(defaults, raw.get("helm") or {}, where),
        helm_spec=_merged(defaults, raw.get("helm") or {}),
        endpoint=_str_map(raw.get("endpoint"), f"{where}: `endpoint`"),
        settings=settings,
        secrets=_str_map(raw.get("secrets"), f"{where}: `secrets`"),
        hooks=tuple(_parse_hook(h, where) for h in raw.get("hooks") or []),
        patches=_bool(raw.get("patches", False), f"{where}: `patches`"),
        undeclared_values=_str_list(raw.get("undeclaredValues"), f"{where}: `undeclaredValues`"),
    )


def _parse_need(raw: Any, where: str) -> Need:
    if isinstance(raw, str):
        return Need(release=raw)
    if isinstance(raw, dict) and isinstance(raw.get("release"), str) and set(raw) <= {"release", "inject"}:
        return Need(release=raw["release"], inject=_str_map(raw.get("inject"), f"{where}: needs[{raw['release']}].inject"))
    raise InputError(f"{where}: each of `needs` is a release name or {{release: <name>, inject: {{<values.path>: <endpoint key>}}}}")


def _parse_hook(raw: Any, where: str) -> Hook:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise InputError(f"{where}: each hook needs a `name`")
    hook_where = f"{where}: hook {raw['name']!r}"
    when = raw.get("when")
    if when not in HOOK_WHEN:
        raise InputError(f"{hook_where}: `when` is {when!r}; allowed: {list(HOOK_WHEN)}")
    check = raw.get("check")
    if when == "preInstall" and check not in HOOK_CHECKS:
        raise InputError(f"{hook_where}: `check` is {check!r}; allowed: {list(HOOK_CHECKS)}")
    if check == "node-label" and not (isinstance(raw.get("label"), str) and "=" in raw["label"]):
        raise InputError(f"{hook_where}: the node-label check needs `label: key=value`")
    delay = raw.get("delay_s", 0)
    if not isinstance(delay, int) or not 0 <= delay <= 600:
        raise InputError(f"{hook_where}: `delay_s` must be whole seconds from 0 to 600")
    return Hook(name=raw["name"], when=when, check=check, label=raw.get("label"), delay_s=delay)


def parse_helm_options(defaults: dict[str, Any], override: dict[str, Any], where: str) -> HelmOptions:
    """Merge a release's `helm` block over the catalog defaults and validate it."""
    from model.values import deep_merge  # local import: values imports nothing from here

    _check_option_keys(defaults, HELM_OPTION_KEYS, "helm", where)
    _check_option_keys(override, HELM_OPTION_KEYS, "helm", where)
    merged = deep_merge(defaults, override)
    timeout = str(merged.get("timeout", "600s"))
    match = DURATION.match(timeout)
    if not match:
        raise InputError(f"{where}: helm.timeout {timeout!r} must be a duration like 600s, 10m or 1h")
    seconds = int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]
    install = merged.get("install") or {}
    upgrade = merged.get("upgrade") or {}
    strategy = (upgrade.get("remediation") or {}).get("strategy", "rollback")
    if strategy not in REMEDIATION_STRATEGIES:
        raise InputError(f"{where}: helm.upgrade.remediation.strategy {strategy!r}; allowed: {list(REMEDIATION_STRATEGIES)}")
    retries = (install.get("remediation") or {}).get("retries", 0)
    if retries != 0:
        # helm.v3.Release has one --atomic switch and no retry loop; say so
        # instead of silently ignoring the setting.
        raise InputError(f"{where}: helm.install.remediation.retries must be 0 (a failed install is uninstalled at once)")
    drift = (merged.get("driftDetection") or {}).get("mode", "enabled")
    if drift not in DRIFT_MODES:
        raise InputError(f"{where}: helm.driftDetection.mode {drift!r}; allowed: {list(DRIFT_MODES)}")
    max_history = merged.get("maxHistory", 10)
    if not isinstance(max_history, int) or max_history < 2:
        raise InputError(f"{where}: helm.maxHistory must be a whole number >= 2 (rollback needs the previous revision)")
    return HelmOptions(
        timeout_s=seconds,
        wait=not _bool(install.get("disableWait", False), f"{where}: helm.install.disableWait"),
        wait_for_jobs=not _bool(install.get("disableWaitForJobs", False), f"{where}: helm.install.disableWaitForJobs"),
        atomic=strategy == "rollback",
        cleanup_on_fail=_bool(upgrade.get("cleanupOnFail", True), f"{where}: helm.upgrade.cleanupOnFail"),
        max_history=max_history,
        drift_mode=drift,
    )


def _check_option_keys(block: Any, allowed: dict[str, Any], path: str, where: str) -> None:
    """Every key of a `helm` block is one Helm option of HELM_OPTION_KEYS; else InputError naming each with the allowed names."""
    problems = _unknown_options(block, allowed, path, where)
    if problems:
        raise InputError(*problems)


def _unknown_options(block: Any, allowed: dict[str, Any], path: str, where: str) -> list[str]:
    import difflib

    if not isinstance(block, dict):
        return [f"{where}: {path} must be a map; allowed keys: {sorted(allowed)}"]
    problems = []
    for key, value in block.items():
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(f"{where}: {path}.{key} is not a Helm option; {hint}allowed: {sorted(allowed)}")
        elif isinstance(allowed[key], dict) and value is not None:
            problems += _unknown_options(value, allowed[key], f"{path}.{key}", where)
    return problems


def _str_list(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise InputError(f"{where} must be a list of values paths (a.b.c)")
    return tuple(raw)


def _merged(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    from model.values import deep_merge

    return deep_merge(defaults, override)


def _str_map(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise InputError(f"{where} must map names to strings")
    return dict(raw)


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise InputError(f"{where} must be true or false, not {raw!r}")
    return raw
