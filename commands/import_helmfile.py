"""Write a site's stack file(s) from its Helmfile: `make import-helmfile DIR=<helmfile dir> ENV=<env>[,<env>...] [STACK=<name>]`.

For each environment the pinned Helmfile resolves every release's values
(`helmfile build --embed-values`). Releases are mapped onto the catalog by
name and namespace. The platform settings (external IP, NFS, storage class,
offline registry and file server) are read back from those values through
the catalog's own `settings` mapping; what then still differs from the
project's values (values/<release>.yaml, settings, endpoints) becomes the
stack's `releases.<name>.values`, leaving out what only restates a chart
default. One environment gives one stack (STACK, default the environment's
name); several give one stack each, named after the environment, inheriting
what they share from the parent stack STACK (default `helmfile`).

Never written: values at the catalog's secret paths and credential-looking
values (the policy's rule); each becomes a `make secret` command printed for
the user. Releases, hooks and keys that do not map are listed, not dropped
silently. A file whose content would not change is not touched, so a second
run changes nothing. Exit 0 when written (lists included), 2 on an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cli import helmfile as hf
from cli.helm import show_values
from cli.process import ToolError
from commands import ROOT
from model import migration, valuekeys
from model.catalog import Catalog, Release, load_catalog
from model.deployment import prepare
from model.errors import InputError
from model.settings import parse_settings
from model.values import deep_merge

HELM_EVENTS = {"preuninstall": "preDelete", "presync": "preInstall", "preapply": "preInstall"}
# Release fields Helmfile resolves that need nothing in a stack (selectors, what the catalog holds).
NOT_NEEDED = {"labels": "Helmfile selectors; the catalog's tiers group releases", "createNamespace": "the program creates every namespace",
              "version": "the chart and version come from the catalog and its lock", "condition": "enabled is the stack's switch"}


@dataclass
class EnvironmentImport:
    """What one environment of the site turns into."""

    environment: str
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Secret config key -> (release, values path) where Helmfile holds it in plain text."""
    notes: list[str] = field(default_factory=list)
    """Releases, hooks and keys not mapped, and why."""
    target: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Mapped release -> Helmfile's values without secrets and unread keys (what the stack must resolve to)."""
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Mapped release -> its chart's own values (both sides are compared over them)."""


def chart_defaults(chart: Path, timeout_s: float = 120.0) -> dict[str, Any]:
    """The chart's own values (`helm show values`)."""
    return show_values(str(chart), timeout_s)


def import_environment(root: Path, catalog: Catalog, state: hf.HelmfileState, environment: str, stack: str, charts_dir: str | None) -> EnvironmentImport:
    """The stack config one Helmfile environment needs, and everything not mapped."""
    result = EnvironmentImport(environment)
    known = catalog.by_name()
    values: dict[str, dict[str, Any]] = {}
    enabled: dict[str, bool] = {}
    helmfile_by_name: dict[str, hf.HelmfileRelease] = {}
    for release in state.releases:
        entry = known.get(release.name)
        if entry is None:
            result.notes.append(f"release {release.namespace}/{release.name}: not in the catalog ({catalog.source}); not imported"
                                + ("" if release.installed else " (Helmfile does not install it here: installed false)"))
            continue
        if release.namespace != entry.namespace:
            result.notes.append(f"release {release.namespace}/{release.name}: the catalog installs {release.name} in namespace "
                                f"{entry.namespace!r}; not imported (adopting it there would install a second copy)")
            continue
        helmfile_by_name[release.name] = release
        enabled[release.name] = release.installed
        if release.installed:
            clean, found, loose = migration.take_secrets(release.merged_values(), entry.secrets)
            for key, path in found.items():
                result.secrets[key] = (release.name, path)
            for path in loose:
                result.notes.append(f"release {release.name}: {path} holds a credential in plain text at a path the catalog does not "
                                    f"map as a secret; not written: map it in catalog/releases.yaml `secrets:`, then `make secret`")
            values[release.name] = clean
        _note_fields(result, release, entry, state)
    inferred = migration.infer_platform(catalog, values)
    result.notes.extend(inferred.conflicts)
    raw: dict[str, Any] = migration.platform_config(inferred.settings)
    releases_config: dict[str, dict[str, Any]] = {}
    for entry in catalog.releases:
        wanted = enabled.get(entry.name, False)
        if entry.name not in helmfile_by_name:
            result.notes.append(f"release {entry.name}: the Helmfile site has no such release; the stack disables it")
        if wanted != entry.enabled:
            releases_config[entry.name] = {"enabled": wanted}
    raw["releases"] = releases_config
    if charts_dir:
        raw["chartsDir"] = charts_dir
    settings = parse_settings(stack, raw, catalog)
    deployment = prepare(root, catalog, settings, set(catalog.secret_keys()))
    for name, target in values.items():
        resolved = deployment.releases[name]
        override = migration.overlay(resolved.values, target)
        chart = root / resolved.chart_path
        result.defaults[name] = chart_defaults(chart)
        override = migration.prune_defaults(override, resolved.values, result.defaults[name])
        unknown = valuekeys.unknown_keys(_present(override), valuekeys.chart_key_tree(chart), known[name].undeclared_values)
        unread = [path for path, _ in unknown]
        for path, suggestion in unknown:
            result.notes.append(f"release {name}: {valuekeys.describe(path, suggestion)}: chart {resolved.chart_name} {resolved.chart_version} "
                                f"does not read it (Helmfile passed it, nothing used it); not written")
        override = migration.drop_paths(override, unread)
        result.target[name] = migration.drop_paths(target, unread)
        if override:
            releases_config.setdefault(name, {})["values"] = override
        helm = _helm_options(helmfile_by_name[name], state, known[name])
        if helm:
            releases_config.setdefault(name, {})["helm"] = helm
    raw.pop("chartsDir", None)
    result.config = {k: v for k, v in raw.items() if v}
    return result


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (_present(v) if isinstance(v, dict) else v) for k, v in values.items() if v is not None}


def _helm_options(release: hf.HelmfileRelease, state: hf.HelmfileState, entry: Release) -> dict[str, Any]:
    """The stack's `helm` override where Helmfile waits or times out differently from the catalog."""
    fields = {**state.helm_defaults, **release.fields}
    helm: dict[str, Any] = {}
    timeout = fields.get("timeout")
    if timeout is not None and int(timeout) != entry.helm.timeout_s:
        helm["timeout"] = f"{int(timeout)}s"
    install: dict[str, Any] = {}
    if "wait" in fields and bool(fields["wait"]) != entry.helm.wait:
        install["disableWait"] = not fields["wait"]
    if "waitForJobs" in fields and bool(fields["waitForJobs"]) != entry.helm.wait_for_jobs:
        install["disableWaitForJobs"] = not fields["waitForJobs"]
    if install:
        helm["install"] = install
    return helm


def _note_fields(result: EnvironmentImport, release: hf.HelmfileRelease, entry: Release, state: hf.HelmfileState) -> None:
    for hook in release.hooks:
        events = [str(e) for e in hook.get("events") or []]
        command = " ".join([str(hook.get("command", "")), *(str(a) for a in hook.get("args") or [])]).strip()
        kinds = {HELM_EVENTS[e] for e in events if e in HELM_EVENTS}
        matches = [h.name for h in entry.hooks if h.when in kinds]
        if matches:
            result.notes.append(f"release {release.name}: Helmfile hook {events} `{command}` -> the catalog's hook(s) {matches} run in its place")
        else:
            result.notes.append(f"release {release.name}: Helmfile hook {events} `{command}` has no catalog hook; not imported "
                                f"(add one to catalog/releases.yaml `hooks:` if it is still needed)")
    wanted_needs = {f"{n.release}" for n in entry.needs}
    for need in release.needs:
        name = need.rsplit("/", 1)[-1]
        if name not in wanted_needs:
            result.notes.append(f"release {release.name}: Helmfile needs {need}; the catalog orders it by tier instead (no explicit need)")
    handled = {"wait", "waitForJobs", "timeout"} | set(NOT_NEEDED)
    for key, value in sorted(release.fields.items()):
        if key in NOT_NEEDED or value in (None, {}, [], ""):
            continue
        if key not in handled:
            result.notes.append(f"release {release.name}: Helmfile field {key!r} is not imported; set its equivalent by hand if it matters")


def stack_names(environments: list[str], stack: str | None) -> tuple[dict[str, str], str | None]:
    """Environment -> stack name, and the shared parent stack (several environments only)."""
    if len(environments) == 1:
        return {environments[0]: stack or environments[0]}, None
    parent = stack or "helmfile"
    if parent in environments:
        raise InputError(f"STACK={parent} names the shared parent stack; it cannot also be an environment of ENV={','.join(environments)}")
    return {env: env for env in environments}, parent


def write_stack(root: Path, stack: str, config: dict[str, Any], inherits: str | None) -> bool:
    """Write Pulumi.<stack>.yaml unless its content is already this; True when written."""
    path = root / f"Pulumi.{stack}.yaml"
    existing = yaml.safe_load(path.read_text()) if path.is_file() else None
    document = migration.stack_document(existing if isinstance(existing, dict) else None, config, inherits)
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=120)
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="the site's Helmfile folder")
    parser.add_argument("--env", required=True, help="Helmfile environment(s), comma-separated")
    parser.add_argument("--stack", help="stack to write (one environment) or the shared parent (several)")
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from")
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder to write the stack files into")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    environments = [e.strip() for e in args.env.split(",") if e.strip()]
    try:
        names, parent = stack_names(environments, args.stack)
        catalog = load_catalog(root / "catalog" / "releases.yaml")
        folder = args.dir.resolve()
        imports = [import_environment(root, catalog, hf.build(folder, env), env, names[env], args.charts_dir) for env in environments]
        written: list[tuple[str, bool]] = []
        if parent:
            common = migration.shared([i.config for i in imports])
            written.append((parent, write_stack(root, parent, common, None)))
            for item in imports:
                written.append((names[item.environment], write_stack(root, names[item.environment], migration.without(item.config, common), parent)))
        else:
            written.append((names[environments[0]], write_stack(root, names[environments[0]], imports[0].config, None)))
        leftovers = [_verify(root, names[i.environment], i, args.charts_dir) for i in imports]
    except (InputError, ToolError) as error:
        print(f"error: import-helmfile: {error}", file=sys.stderr)
        return 2
    for stack, changed in written:
        print(f"{'wrote' if changed else 'unchanged'}: Pulumi.{stack}.yaml")
    for item in imports:
        stack = names[item.environment]
        if item.secrets:
            print(f"\nsecrets of environment {item.environment} (not written; set each from a file holding Helmfile's value):")
            for key, (release, path) in sorted(item.secrets.items()):
                print(f"  make secret STACK={stack} KEY={key} < <file>    # Helmfile's {release}: {path}")
        if item.notes:
            print(f"\nnot imported or mapped differently ({item.environment}):")
            for note in item.notes:
                print(f"  - {note}")
    for item, left in zip(imports, leftovers, strict=True):
        for line in left:
            print(f"differs after import ({item.environment}): {line}")
    print(f"\nnext: `make parity DIR={args.dir} ENV=<env> STACK=<stack>` for each environment until it is clean")
    return 0


def _verify(root: Path, stack: str, item: EnvironmentImport, charts_dir: str | None) -> list[str]:
    """Resolve the written stack as the program does; what still differs from Helmfile's values (should be nothing)."""
    from model.deployment import resolve_stack

    deployment = resolve_stack(stack, root, charts_dir)
    lines = []
    for name, target in item.target.items():
        if name not in deployment.releases:
            lines.append(f"{name}: not enabled in stack {stack}")
            continue
        release = deployment.releases[name]
        clean, _, _ = migration.take_secrets(release.values, release.secret_paths)
        defaults = item.defaults.get(name, {})
        rest = migration.overlay(deep_merge(defaults, clean), deep_merge(defaults, target))
        if rest:
            lines.append(f"{name}: {json.dumps(rest, sort_keys=True)[:300]}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
