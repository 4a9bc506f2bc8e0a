"""Resolve a stack into what the components deploy: one pass, every check.

`prepare` is the single pre-flight of the program: it validates the stack
settings against the catalog, builds the dependency graph, verifies the
charts and lists missing secrets, and reports all problems together, before
a single resource is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model import charts as chartlib
from model import valuekeys
from model.catalog import Catalog, HelmOptions, Hook, Release, load_catalog, parse_helm_options
from model.derived import apply_settings, is_template
from model.errors import InputError
from model.graph import Plan, plan
from model.identity import Description
from model.settings import ADOPT_ALL, StackSettings
from model.stackfile import stack_settings
from model.values import get_path, layer_values, mask, set_path
from model.yamlload import safe_load
from postrender.kustomize import check_patch_folders, release_patches
from postrender.plan import PostRender, check_registry, plan_postrender

OWN_CHARTS = Path("charts/own")
KEYS_CACHE = Path(".state/render/keys")
VALUES_DIR = Path("values")


@dataclass(frozen=True)
class ResolvedRelease:
    """One enabled release with everything the LocalRelease component needs."""

    name: str
    tier: str
    namespace: str
    chart_path: str
    """Chart directory or archive, relative to the project root: the Release's `chart` input.

    An external archive is staged by content at `.state/charts/<sha256>.tgz`, so
    the same archive in another charts folder is the same input."""
    chart_name: str
    chart_version: str
    chart_digest: str
    """sha256 of the chart content: any template edit changes it."""
    source: str
    """'local' (this repo) or the repository the archive was synced from."""
    values: dict[str, Any]
    """Resolved values without secrets (they are added as secret Outputs)."""
    secret_paths: dict[str, str]
    """Values path -> secret config key."""
    helm: HelmOptions
    hooks: tuple[Hook, ...]
    depends_on: tuple[str, ...]
    postrender: PostRender | None = None
    """Helm post-render (charts/patches/<release>/ kustomization, image registry and digest pin), or None."""
    adopt: bool = False
    """Import the Helm release already in the cluster (Helmfile migration) instead of installing it."""


@dataclass(frozen=True)
class Deployment:
    """A stack, resolved."""

    plan: Plan
    releases: dict[str, ResolvedRelease]
    """Enabled releases by name, in deploy order."""
    secret_keys: tuple[str, ...]
    """Secret config keys the enabled releases read."""

    def masked_values(self, name: str) -> dict[str, Any]:
        """A release's resolved values with every secret shown as the mask."""
        release = self.releases[name]
        return mask(release.values, list(release.secret_paths))


def release_description(chart_version: str, chart_digest: str, postrender: PostRender | None) -> str:
    """The Helm release description the program sets (a Release input): chart version and digest, what the post-render does.

    Helm compares only values and chart version; the digest makes any change of
    chart content (or of its patches) an update of the release.
    """
    return Description(chart_version, chart_digest, postrender.description() if postrender is not None else "").format()


def enabled_releases(catalog: Catalog, settings: StackSettings) -> set[str]:
    """Names of the releases a stack deploys (catalog default, stack override, externals)."""
    return {r.name for r in catalog.releases if _enabled(r, settings)}


def prepare(root: Path, catalog: Catalog, settings: StackSettings, present_secrets: set[str], verify_charts: bool = True) -> Deployment:
    """Resolve and check a stack; raise InputError listing every problem found.

    verify_charts=False is for read-only comparisons (env-diff, audit) on a
    checkout without synced archives: external charts are then taken from the
    lock as recorded (or the declaration, with an empty digest), unchecked.
    Everything that deploys keeps the default.
    """
    known = catalog.by_name()
    enabled = enabled_releases(catalog, settings)
    graph = plan(catalog, enabled, set(settings.externals))
    problems: list[str] = []
    secret_keys = sorted({key for name in graph.order for key in known[name].secrets.values()})
    missing = [key for key in secret_keys if key not in present_secrets]
    if missing:
        commands = "; ".join(f"pulumi config set --secret {key} --stack {settings.stack}" for key in missing)
        problems.append(f"stack {settings.stack!r} lacks required secret(s) {missing}: set each with `{commands}` (or `make secret STACK={settings.stack} KEY=<key>`)")
    charts_root = root / settings.charts_dir
    external_needed = {known[n].chart.name for n in graph.order if known[n].chart.kind == "external"}
    lock: dict[str, chartlib.LockEntry] = {}
    if external_needed and verify_charts:
        try:
            lock = chartlib.verify_lock(charts_root, required=external_needed)
        except InputError as error:
            problems.extend(error.problems)
    elif external_needed:
        lock = chartlib.unverified_lock(charts_root)
    problems.extend(check_patch_folders(root, known))
    problems.extend(
        f"Pulumi.{settings.stack}.yaml: astrago-deploy:adopt names {name!r}, which this stack does not deploy; "
        f"adopt only enabled releases: {sorted(enabled)}"
        for name in settings.adopt if name != ADOPT_ALL and name not in enabled
    )
    registry = None
    if settings.offline.get("registry"):
        try:
            registry = check_registry(settings.offline["registry"], f"Pulumi.{settings.stack}.yaml: astrago-deploy:offline.registry")
        except InputError as error:
            problems.extend(error.problems)
    resolved: dict[str, ResolvedRelease] = {}
    for name in graph.order:
        release = known[name]
        try:
            # Patches are checked (syntax, folder against the catalog flag) here, at
            # preview: the provider applies them only on install and upgrade.
            patches = release_patches(root, name, release.patches)
        except InputError as error:
            problems.extend(error.problems)
            continue
        if release.chart.kind == "external" and release.chart.name not in lock:
            continue  # already reported by verify_lock
        try:
            resolved[name] = _resolve(root, release, graph, settings, known, lock,
                                      plan_postrender(root, settings.stack, name, release.namespace, patches, registry), verify_charts)
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(*problems)
    return Deployment(plan=graph, releases=resolved, secret_keys=tuple(secret_keys))


def product_endpoints(deployment: Deployment, settings: StackSettings) -> dict[str, str]:
    """URLs of the services people open, for the stack outputs."""
    host = settings.cluster.get("externalIP")
    if not host:
        return {}
    ports = {"astrago": ("proxy.service.nodePort", 30080), "keycloak": ("service.nodePorts.http", 30001), "harbor": ("expose.nodePort.ports.http.nodePort", 30002)}
    endpoints = {}
    for name, (path, default) in ports.items():
        if name in deployment.releases:
            port = get_path(deployment.releases[name].values, path) or default
            endpoints[name] = f"http://{host}:{port}"
    return endpoints


def _enabled(release: Release, settings: StackSettings) -> bool:
    override = settings.releases.get(release.name)
    if release.name in settings.externals:
        return False
    if override is not None and override.enabled is not None:
        return override.enabled
    return release.enabled


def _resolve(
    root: Path, release: Release, graph: Plan, settings: StackSettings,
    known: dict[str, Release], lock: dict[str, chartlib.LockEntry], postrender: PostRender | None, check_keys: bool = True,
) -> ResolvedRelease:
    where = f"release {release.name!r}"
    if release.chart.kind == "local":
        chart_dir = OWN_CHARTS / release.chart.name
        if not (root / chart_dir / "Chart.yaml").is_file():
            raise InputError(f"{where}: chart folder {chart_dir} has no Chart.yaml; the catalog names local chart {release.chart.name!r}")
        chart_path, version, source = chart_dir.as_posix(), chartlib.chart_version(root / chart_dir), "local"
        digest = chartlib.chart_digest(root / chart_dir)
    else:
        # verify_lock has checked the archive against this checksum.
        entry = lock[release.chart.name]
        version, source, digest = entry.version, entry.source, entry.sha256
        archive = root / settings.charts_dir / entry.archive
        chart_path = chartlib.stage_archive(root, archive, digest) if check_keys else chartlib.staged_path(digest)
    base = _base_values(root, release.name)
    platform = settings.platform_settings()
    setting_values = {path: platform[setting] for path, setting in release.settings.items() if not is_template(setting)}
    injected: dict[str, Any] = {}
    for need in release.needs:
        if not need.inject:
            continue
        if need.release in settings.externals:
            endpoint, origin = settings.externals[need.release], f"Pulumi.{settings.stack}.yaml: astrago-deploy:externals.{need.release}"
        else:
            endpoint, origin = known[need.release].endpoint, f"the catalog's endpoint of {need.release!r}"
        for path, key in need.inject.items():
            if key not in endpoint:
                raise InputError(f"{where} needs {need.release}'s {key!r} (for {path}), which {origin} does not give; add `{key}: ...` there")
            injected[path] = endpoint[key]
    override = settings.releases.get(release.name)
    helm = release.helm
    if override and override.helm:
        helm = parse_helm_options(release.helm_spec, override.helm, f"Pulumi.{settings.stack}.yaml: astrago-deploy:releases.{release.name}")
    lower = layer_values(base, setting_values, injected, {})
    try:
        values = apply_settings(lower, override.values if override else {}, release.settings, platform)
    except InputError as error:
        raise InputError(*(f"{where}: {problem}" for problem in error.problems)) from None
    if check_keys:
        derived = {path.split("[", 1)[0]: get_path(values, path.split("[", 1)[0]) for path, spec in release.settings.items() if is_template(spec)}
        layers = [(f"values/{release.name}.yaml", base),
                  (f"catalog/releases.yaml: release {release.name!r} settings", _nested({**setting_values, **derived})),
                  (f"catalog/releases.yaml: release {release.name!r} needs", _nested(injected)),
                  (f"Pulumi.{settings.stack}.yaml: astrago-deploy:releases.{release.name}.values", override.values if override else {})]
        _check_keys(root, release, chart_path, digest, version, layers)
    return ResolvedRelease(
        name=release.name, tier=release.tier, namespace=release.namespace,
        chart_path=chart_path, chart_name=release.chart.name, chart_version=version, chart_digest=digest, source=source,
        values=values, secret_paths=dict(release.secrets), helm=helm, hooks=release.hooks,
        depends_on=graph.depends_on[release.name], postrender=postrender, adopt=settings.adopts(release.name),
    )


def _nested(dotted: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in dotted.items():
        if value is not None:
            set_path(tree, path, value)
    return tree


def _check_keys(root: Path, release: Release, chart_path: str, digest: str, version: str, layers: list[tuple[str, dict[str, Any]]]) -> None:
    """InputError naming every values key no layer may set: the chart declares no such key (closest known one suggested)."""
    tree = valuekeys.cached_key_tree(root / chart_path, digest, root / KEYS_CACHE)
    problems = []
    for origin, layer in layers:
        for path, suggestion in valuekeys.unknown_keys(layer, tree, release.undeclared_values):
            problems.append(f"{origin}: {valuekeys.describe(path, suggestion)} — chart {release.chart.name} {version} declares no such value "
                            f"(its values.yaml, subcharts and schema); if the chart reads it anyway, add {path!r} to the catalog's "
                            f"`undeclaredValues` of release {release.name!r}")
    if problems:
        raise InputError(*problems)


def _base_values(root: Path, name: str) -> dict[str, Any]:
    path = root / VALUES_DIR / f"{name}.yaml"
    if not path.is_file():
        return {}
    try:
        data = safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: base values must be a map")
    return data


def resolve_stack(stack: str, root: Path, charts_dir: str | None = None, verify_charts: bool = True) -> Deployment:
    """Resolve a stack as the program does, treating every secret as set.

    verify_charts=False: for comparisons that need no archive (see model.deployment.prepare).
    """
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    return prepare(root, catalog, stack_settings(root, stack, catalog, charts_dir), set(catalog.secret_keys()), verify_charts)
