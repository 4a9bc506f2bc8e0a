"""Stack settings: the typed form of a stack's `astrago-deploy:*` config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model import schemas
from model.catalog import Catalog
from model.errors import InputError
from model.yamlload import Document, KeyPath

PROJECT = "astrago-deploy"
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


def parse_settings(stack: str, raw: dict[str, Any], catalog: Catalog, where: Callable[[KeyPath], str] | None = None) -> StackSettings:
    """Validate a stack's config objects; raise InputError naming every bad key.

    raw holds the config values by key without the project prefix: cluster,
    offline, releases, externals, chartsDir, adopt (absent keys may be None).
    Their shape is checked against schemas/stack.schema.json; the checks that
    need the catalog follow. where: `<file> line <n>` of a key path, when the
    stack files are at hand (model.stackfile.locator).
    """
    source = f"Pulumi.{stack}.yaml"
    config = {f"{PROJECT}:{key}": value for key, value in raw.items() if value is not None}
    # Key paths of the checked data are ("config", "astrago-deploy:<key>", ...); the files know them by short path.
    locate = (lambda path: where((str(path[1]).partition(":")[2], *map(str, path[2:])) if len(path) > 1 else ())) if where else None
    schemas.check("stack", Document(source=source, data={"config": config}, locate=locate), hide=1)

    def at(*path: str) -> str:
        return f"{where(path) if where else source}: {PROJECT}:{'.'.join(path)}"

    problems: list[str] = []
    known = catalog.by_name()
    cluster = raw.get("cluster") or {}
    offline = raw.get("offline") or {}
    releases: dict[str, ReleaseOverride] = {}
    for name, override in (raw.get("releases") or {}).items():
        if name not in known:
            problems.append(f"{at('releases', name)}: no such release in {catalog.source}{_closest(name, known)}; known releases: {sorted(known)}")
            continue
        body = override or {}
        values = body.get("values") or {}
        for values_path, key in sorted(known[name].secrets.items()):
            if _has_path(values, values_path):
                problems.append(
                    f"{at('releases', name, 'values', *values_path.split('.'))} is a credential: {name} reads it from the encrypted "
                    f"secret {key}. Remove it from the stack file (and from git history if it was committed) and set it with "
                    f"`make secret STACK={stack} KEY={key} < file`"
                )
        releases[name] = ReleaseOverride(enabled=body.get("enabled"), values=values, helm=body.get("helm") or {})
    externals: dict[str, dict[str, str]] = {}
    for name, endpoint in (raw.get("externals") or {}).items():
        if name not in known:
            problems.append(f"{at('externals', name)}: no such release in {catalog.source}{_closest(name, known)}; known releases: {sorted(known)}")
            continue
        offered = known[name].endpoint
        for extra in sorted(set(endpoint) - set(offered)):
            problems.append(f"{at('externals', name, extra)} is not an endpoint key of {name}; allowed: {sorted(offered)}")
        externals[name] = {k: str(v) for k, v in endpoint.items()}
    adopt = _adopt(raw.get("adopt"), at("adopt"), known, problems)
    if problems:
        raise InputError(*problems)
    return StackSettings(stack=stack, cluster=cluster, offline={k: str(v) for k, v in offline.items()}, releases=releases,
                         externals=externals, charts_dir=raw.get("chartsDir") or "charts", adopt=adopt)


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


def _adopt(value: list[str] | None, where: str, known: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    if not value:
        return ()
    if ADOPT_ALL in value and len(value) > 1:
        problems.append(f"{where}: {ADOPT_ALL!r} already means every enabled release; list either [{ADOPT_ALL}] or release names, not both")
    for name in value:
        if name != ADOPT_ALL and name not in known:
            problems.append(f"{where} names {name!r}, which is not a release of the catalog; known releases: {sorted(known)}")
    return tuple(value)


def _closest(name: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _has_path(values: Any, dotted: str) -> bool:
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
