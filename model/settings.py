"""Stack settings: the typed form of a stack's `astrago-deploy:*` config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model.catalog import Catalog
from model.errors import InputError

CLUSTER_KEYS = {"externalIP", "domain", "storageClass", "nfs"}
NFS_KEYS = {"server", "path"}
OFFLINE_KEYS = {"registry", "fileServer"}
RELEASE_OVERRIDE_KEYS = {"enabled", "values", "helm"}
# `adopt: [all]` adopts every release the stack enables.
ADOPT_ALL = "all"
# Pulumi's switch that writes the state only at the end of an update.
SKIP_CHECKPOINTS = "PULUMI_SKIP_CHECKPOINTS"


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
    adopt: tuple[str, ...] = ()
    """Releases to adopt from the cluster (Helmfile migration): names, or (ADOPT_ALL,)."""

    def adopts(self, release: str) -> bool:
        """Whether this run imports the release's existing Helm release instead of installing it."""
        return ADOPT_ALL in self.adopt or release in self.adopt

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
            "fileServer": (self.offline.get("fileServer") or "").rstrip("/") or None,
        }


def parse_settings(stack: str, raw: dict[str, Any], catalog: Catalog) -> StackSettings:
    """Validate a stack's config objects; raise InputError naming every bad key.

    raw holds the config values by key without the project prefix: cluster,
    offline, releases, externals, chartsDir, adopt (absent keys may be None).
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
    adopt = _adopt(raw.get("adopt"), f"{where}: astrago-deploy:adopt", known, problems)
    if problems:
        raise InputError(*problems)
    return StackSettings(stack=stack, cluster=cluster, offline={k: str(v) for k, v in offline.items()}, releases=releases,
                         externals=externals, charts_dir=charts_dir, adopt=adopt)


def check_adoption(settings: StackSettings, environ: Mapping[str, str], dry_run: bool) -> None:
    """Refuse an adopting update that would write Helm's stored values to the state unencrypted.

    The provider imports a Helm release with the values Helm stored, credentials
    included and not marked secret; the update that follows replaces them with the
    program's encrypted values. Only the checkpoint saved between the two holds them,
    so the update must run with Pulumi's checkpoints off (a preview writes no state).
    """
    if not settings.adopt or dry_run or environ.get(SKIP_CHECKPOINTS, "").lower() in ("1", "true"):
        return
    raise InputError(
        f"Pulumi.{settings.stack}.yaml: astrago-deploy:adopt imports Helm releases whose stored values (credentials included) "
        f"Pulumi would checkpoint unencrypted before updating them; run this update with {SKIP_CHECKPOINTS}=true, "
        f"which writes only the final, encrypted state: `{SKIP_CHECKPOINTS}=true make up STACK={settings.stack}`"
    )


def _adopt(value: Any, where: str, known: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"{where} must be a list of release names (or [{ADOPT_ALL}]), not {value!r}")
        return ()
    if ADOPT_ALL in value and len(value) > 1:
        problems.append(f"{where}: {ADOPT_ALL!r} already means every enabled release; list either [{ADOPT_ALL}] or release names, not both")
    for name in value:
        if name != ADOPT_ALL and name not in known:
            problems.append(f"{where} names {name!r}, which is not a release of the catalog; known releases: {sorted(known)}")
    return tuple(value)


def _mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where} must be a map, not {type(value).__name__}")
        return {}
    return value
