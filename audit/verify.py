"""Does a checkout reproduce what an update deployed? (`make audit-verify`, and the check inside `make audit-restore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from audit.diff import compare, update_line
from model.deployment import resolve_stack
from model.errors import InputError
from model.history import History, Secret, Update
from model.stackfile import PROJECT


def stack_config(root: Path, stack: str) -> dict[str, Any]:
    """The `config` map of Pulumi.<stack>.yaml under root ({} when there is none)."""
    path = root / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    config = (data or {}).get("config") if isinstance(data, dict) else None
    return config if isinstance(config, dict) else {}


def charts_dir(root: Path, stack: str) -> str:
    """The charts folder a stack file (or the one it inherits) names; `charts` by default."""
    config = stack_config(root, stack)
    parent = config.get(f"{PROJECT}:inherits")
    for source in (config, stack_config(root, parent) if isinstance(parent, str) and parent else {}):
        value = source.get(f"{PROJECT}:chartsDir")
        if isinstance(value, str) and value:
            return value
    return "charts"


def record_text(update: Update) -> str:
    """What update N deployed: per release its chart version, digest and values (secrets masked)."""
    lines = [f"# {update_line(update)}"]
    for r in (update.releases or {}).values():
        lines.append(f"# {r.name}: namespace {r.namespace}, chart {r.chart} {r.version} sha256:{r.digest} ({r.status})")
        lines.append(yaml.safe_dump({r.name: r.masked_values()}, sort_keys=True).rstrip())
    return "\n".join(lines) + "\n"


def compare_tree(tree: Path, stack: str, update: Update, locked: dict[str, str] | None = None, verify_charts: bool = True) -> list[str]:
    """How the stack resolved from `tree` differs from what `update` deployed (empty: it reproduces it).

    Compares the enabled releases, each one's namespace, chart version and
    digest and values (secrets by position only), and the secret config
    ciphertexts of the stack file with those the update ran with. locked:
    external chart -> sha256 from the lock as committed, which counts instead
    of the archive's (a scratch tree may hold stand-ins for missing archives).
    verify_charts=False resolves without reading the archives (no checksum, no
    values-key check against a chart): for a tree whose archives are stand-ins.
    """
    deployment = resolve_stack(stack, tree, verify_charts=verify_charts)
    recorded = update.releases or {}
    problems = [f"release {n}: deployed by update {update.number}, not enabled by this configuration" for n in sorted(set(recorded) - set(deployment.releases))]
    problems += [f"release {n}: enabled by this configuration, not deployed by update {update.number}" for n in sorted(set(deployment.releases) - set(recorded))]
    for name in sorted(set(recorded) & set(deployment.releases)):
        was, now = recorded[name], deployment.releases[name]
        digest = (locked or {}).get(now.chart_name, now.chart_digest) if now.source != "local" else now.chart_digest
        for label, old, new in (("namespace", was.namespace, now.namespace), ("chart version", was.version, now.chart_version), ("chart digest", was.digest, digest)):
            if old != new:
                problems.append(f"release {name}: {label} {new} here, {old} in update {update.number}")
        for change in compare(was.masked_values(), deployment.masked_values(name), "", lambda _p: ""):
            problems.append(f"release {name}: values.{change.path} is {change.new} here, {change.old} in update {update.number}")
    current = {k: v.get("secure") for k, v in stack_config(tree, stack).items() if isinstance(v, dict) and "secure" in v}
    used = {k: v.ciphertext for k, v in update.config.items() if isinstance(v, Secret)}
    for key in sorted(set(current) | set(used)):
        if key not in used:
            problems.append(f"secret {key}: set in Pulumi.{stack}.yaml, not set when update {update.number} ran")
        elif key not in current:
            problems.append(f"secret {key}: set when update {update.number} ran, not in Pulumi.{stack}.yaml")
        elif used[key] is None:
            problems.append(f"secret {key}: the backend's record of update {update.number} holds no ciphertext to compare with")
        elif current[key] != used[key]:
            problems.append(f"secret {key}: set again since update {update.number} (another ciphertext in Pulumi.{stack}.yaml)")
    return problems


def verify(root: Path, history: History, number: int) -> int:
    """Exit 0 when this checkout resolves to exactly what update N deployed."""
    update = history.get(number)
    if update.releases is None:
        raise InputError(f"update {number}: the state after it cannot be read from {history.backend}; nothing to compare with")
    problems = compare_tree(root, history.stack, update)
    if problems:
        print(f"this checkout does not reproduce update {number} of {history.stack}:\n" + "\n".join(f"- {p}" for p in problems))
        return 1
    print(f"this checkout reproduces update {number} of {history.stack}: {len(update.releases)} releases, chart versions and digests, values and secrets")
    return 0
