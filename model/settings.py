"""Stack settings: the typed form of a stack's `astrago-deploy:*` config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model.catalog import Catalog
from model.errors import InputError

CLUSTER_KEYS = {"externalIP", "domain", "storageClass", "nfs"}
NFS_KEYS = {"server", "path"}
OFFLINE_KEYS = {"registry", "fileServer"}
RELEASE_OVERRIDE_KEYS = {"enabled", "values", "helm"}


@dataclass(frozen=True)
class ReleaseOverride:
    """A stack's changes to one catalog release."""

    enabled: bool | None = None
    """None keeps the catalog's default."""
    values: dict[str, Any] = field(default_factory=dict)
    """Helm values laid over the base values file."""
    helm: dict[str, Any] = field(default_factory=dict)
    """Helm options laid over the catalog's (same shape as the catalog's `helm`)."""


@dataclass(frozen=True)
class StackSettings:
    """Everything a stack says, minus secrets (those stay Outputs)."""

    stack: str
    """Stack name, used in messages (e.g. the command that sets a secret)."""
    cluster: dict[str, Any]
    """Cluster facts: externalIP, domain, storageClass, nfs.server, nfs.path."""
    offline: dict[str, str]
    """Air-gap settings: registry (every image is pulled from it), fileServer."""
    releases: dict[str, ReleaseOverride]
    externals: dict[str, dict[str, str]]
    """Release -> endpoint of the external service that replaces it."""
    charts_dir: str = "charts"
    """Folder holding external.yaml, versions.lock and external/ (an unpacked bundle too)."""

    def platform_settings(self) -> dict[str, Any]:
        """The platform facts by the names the catalog's `settings` use."""
        nfs = self.cluster.get("nfs") or {}
        return {
            "storageClass": self.cluster.get("storageClass"),
            "nfs.server": nfs.get("server"),
            "nfs.path": nfs.get("path"),
            "externalIP": self.cluster.get("externalIP"),
            "domain": self.cluster.get("domain"),
            "imageRegistry": self.offline.get("registry"),
        }


def parse_settings(stack: str, raw: dict[str, Any], catalog: Catalog) -> StackSettings:
    """Validate a stack's config objects; raise InputError naming every bad key.

    raw holds the config values by key without the project prefix: cluster,
    offline, releases, externals, chartsDir (absent keys may be None).
    """
    where = f"Pulumi.{stack}.yaml"
    problems: list[str] = []
    cluster = _mapping(raw.get("cluster"), f"{where}: astrago-deploy:cluster", problems)
    for key in sorted(set(cluster) - CLUSTER_KEYS):
        problems.append(f"{where}: astrago-deploy:cluster.{key} is not a known key; allowed: {sorted(CLUSTER_KEYS)}")
    nfs = _mapping(cluster.get("nfs"), f"{where}: astrago-deploy:cluster.nfs", problems)
    for key in sorted(set(nfs) - NFS_KEYS):
        problems.append(f"{where}: astrago-deploy:cluster.nfs.{key} is not a known key; allowed: {sorted(NFS_KEYS)}")
    offline = _mapping(raw.get("offline"), f"{where}: astrago-deploy:offline", problems)
    for key in sorted(set(offline) - OFFLINE_KEYS):
        problems.append(f"{where}: astrago-deploy:offline.{key} is not a known key; allowed: {sorted(OFFLINE_KEYS)}")
    known = catalog.by_name()
    releases: dict[str, ReleaseOverride] = {}
    for name, override in _mapping(raw.get("releases"), f"{where}: astrago-deploy:releases", problems).items():
        key = f"{where}: astrago-deploy:releases.{name}"
        if name not in known:
            problems.append(f"{key}: no such release in {catalog.source}; known releases: {sorted(known)}")
            continue
        body = _mapping(override, key, problems)
        for extra in sorted(set(body) - RELEASE_OVERRIDE_KEYS):
            problems.append(f"{key}.{extra} is not a known key; allowed: {sorted(RELEASE_OVERRIDE_KEYS)}")
        enabled = body.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            problems.append(f"{key}.enabled must be true or false, not {enabled!r}")
            enabled = None
        releases[name] = ReleaseOverride(
            enabled=enabled, values=_mapping(body.get("values"), f"{key}.values", problems), helm=_mapping(body.get("helm"), f"{key}.helm", problems),
        )
    externals: dict[str, dict[str, str]] = {}
    for name, endpoint in _mapping(raw.get("externals"), f"{where}: astrago-deploy:externals", problems).items():
        key = f"{where}: astrago-deploy:externals.{name}"
        if name not in known:
            problems.append(f"{key}: no such release in {catalog.source}; known releases: {sorted(known)}")
            continue
        body = _mapping(endpoint, key, problems)
        offered = known[name].endpoint
        for extra in sorted(set(body) - set(offered)):
            problems.append(f"{key}.{extra} is not an endpoint key of {name}; allowed: {sorted(offered)}")
        externals[name] = {k: str(v) for k, v in body.items()}
    charts_dir = raw.get("chartsDir") or "charts"
    if not isinstance(charts_dir, str):
        problems.append(f"{where}: astrago-deploy:chartsDir must be a folder path")
        charts_dir = "charts"
    if problems:
        raise InputError(*problems)
    return StackSettings(stack=stack, cluster=cluster, offline={k: str(v) for k, v in offline.items()}, releases=releases, externals=externals, charts_dir=charts_dir)


def _mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where} must be a map, not {type(value).__name__}")
        return {}
    return value
