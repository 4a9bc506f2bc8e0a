"""What changed between two updates of a stack: releases, chart versions and digests, values, Helm options, config.

Leaf changes come from the project's one structural diff (model/structdiff.py).

Secrets are compared, never shown: the state re-encrypts every secret on every
update, so two ciphertexts of an unchanged value differ. A secret value counts
as changed when the secret config key it comes from (catalog) was set again
between the two updates (the config keeps one ciphertext until then).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.report import update_json
from model.catalog import load_catalog
from model.errors import InputError
from model.history import History, Secret, Update, masked, ran_by, when
from model.structdiff import ABSENT, join
from model.structdiff import diff as structural_diff
from model.structdiff import show as shown
from model.values import MASK

NONE = repr(ABSENT)


@dataclass(frozen=True)
class Change:
    """One difference: a path, its old and new value as shown, and why when it is not plain."""

    path: str
    old: str
    new: str
    note: str = ""


@dataclass
class UpdateDiff:
    """What changed from update `a` to update `b`."""

    a: Update
    b: Update
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    releases: dict[str, list[Change]] = field(default_factory=dict)
    """Release -> changes of chart, values and options."""
    config: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.releases or self.config)


def catalog_secrets(root: Path) -> dict[str, dict[str, str]]:
    """Release -> values path -> secret config key, from the catalog (empty when it cannot be read)."""
    try:
        return {r.name: dict(r.secrets) for r in load_catalog(root / "catalog" / "releases.yaml").releases}
    except (InputError, OSError):
        return {}


def secret_paths(value: Any, path: str = "") -> set[str]:
    """Paths (model/structdiff's notation) of every `Secret` in value."""
    if isinstance(value, Secret):
        return {path}
    if isinstance(value, dict):
        return set().union(*(secret_paths(v, join(path, k)) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(secret_paths(v, f"{path}[{i}]") for i, v in enumerate(value)))
    return set()


def _secret_config_changed(a: Update, b: Update) -> set[str]:
    """Secret config keys whose ciphertext differs (or cannot be compared): set again between a and b."""
    keys = {k for k, v in {**a.config, **b.config}.items() if isinstance(v, Secret)}
    changed = set()
    for key in keys:
        old, new = a.config.get(key), b.config.get(key)
        if not (isinstance(old, Secret) and isinstance(new, Secret) and old.ciphertext is not None and old.ciphertext == new.ciphertext):
            changed.add(key)
    return changed


def compare(old: dict[str, Any], new: dict[str, Any], prefix: str, secret_change: Callable[[str], str]) -> list[Change]:
    """Leaf differences (model/structdiff) with secrets masked; secret_change(path) decides for a path secret on both sides.

    Two ciphertexts never tell whether a secret changed (every update encrypts
    again), so structdiff compares both sides with secrets as the mask, and a
    path secret on both sides is reported only when secret_change says why.
    """
    old_secrets, new_secrets = secret_paths(old), secret_paths(new)
    one_side = old_secrets ^ new_secrets
    changes = [Change(f"{prefix}{c.path}", shown(c.before), shown(c.after), "secret on one side only" if c.path in one_side else "")
               for c in structural_diff(masked(old), masked(new))]
    for path in sorted(old_secrets & new_secrets):
        note = secret_change(path)
        if note:
            changes.append(Change(f"{prefix}{path}", MASK, MASK, note))
    return sorted(changes, key=lambda c: c.path)


def diff_updates(history: History, a: Update, b: Update, secret_keys: dict[str, dict[str, str]]) -> UpdateDiff:
    """Releases added/removed, chart version/digest, values and options of each release, config."""
    if a.releases is None or b.releases is None:
        missing = a if a.releases is None else b
        raise InputError(f"stack {history.stack}: the state after update {missing.number} cannot be read from {history.backend}; cannot compare its releases")
    diff = UpdateDiff(a=a, b=b)
    diff.added = sorted(set(b.releases) - set(a.releases))
    diff.removed = sorted(set(a.releases) - set(b.releases))
    changed_secrets = _secret_config_changed(a, b)
    for name in sorted(set(a.releases) & set(b.releases)):
        old, new = a.releases[name], b.releases[name]
        mapping = secret_keys.get(name, {})

        def secret_note(path: str, mapping: dict[str, str] = mapping) -> str:
            key = mapping.get(path)
            if key is not None:
                return f"changed: secret config {key} was set again" if f"{history.project}:{key}" in changed_secrets else ""
            # Not a catalog secret: it can only have changed if some secret config did.
            return "may have changed: secret config changed and the catalog maps no key to this path" if changed_secrets else ""

        facts = (("chart.path", "chart"), ("chart.version", "version"), ("chart.digest", "digest"), ("chart.postrender", "extra"), ("namespace", "namespace"))
        changes = [Change(label, getattr(old, attr) or NONE, getattr(new, attr) or NONE) for label, attr in facts if getattr(old, attr) != getattr(new, attr)]
        changes += compare(old.values, new.values, "values.", secret_note)
        changes += compare(old.options, new.options, "helm.", lambda _p: "")
        if changes:
            diff.releases[name] = changes

    def config_note(path: str) -> str:
        # Config keys (astrago-deploy:cluster) hold no dot: the key is the path's first part.
        return "changed: set again" if path.split(".", 1)[0] in changed_secrets else ""

    diff.config = compare(a.config, b.config, "", config_note)
    return diff


def update_line(u: Update) -> str:
    commit = f"{u.commit[:12]}{' (dirty)' if u.dirty else ''}" if u.commit else "no commit"
    return f"update {u.number}: {u.kind} {u.result} {when(u.start)} UTC, {commit}, by {ran_by(u)}: {u.message}"


def diff_text(history: History, diff: UpdateDiff) -> str:
    lines = [f"stack {history.stack}: update {diff.a.number} -> update {diff.b.number}", f"  {update_line(diff.a)}", f"  {update_line(diff.b)}"]
    lines += [f"note: {n}" for n in history.notes]
    if diff.empty:
        lines.append("no difference in releases, chart versions, values or config")
    for name in diff.added:
        r = diff.b.releases[name] if diff.b.releases else None
        lines.append(f"release added: {name}" + (f" (chart {r.version} sha256:{r.digest}, namespace {r.namespace})" if r else ""))
    for name in diff.removed:
        r = diff.a.releases[name] if diff.a.releases else None
        lines.append(f"release removed: {name}" + (f" (chart {r.version} sha256:{r.digest}, namespace {r.namespace})" if r else ""))
    for name, changes in diff.releases.items():
        lines.append(f"release {name}:")
        lines += [f"  {c.path}: {c.old} -> {c.new}" + (f"  [{c.note}]" if c.note else "") for c in changes]
    if diff.config:
        lines.append("stack config:")
        lines += [f"  {c.path}: {c.old} -> {c.new}" + (f"  [{c.note}]" if c.note else "") for c in diff.config]
    return "\n".join(lines) + "\n"


def diff_json(history: History, diff: UpdateDiff) -> str:
    def rows(changes: list[Change]) -> list[dict[str, str]]:
        return [{"path": c.path, "from": c.old, "to": c.new, **({"note": c.note} if c.note else {})} for c in changes]

    data = {
        "stack": history.stack, "from": update_json(diff.a) | {"releases": None}, "to": update_json(diff.b) | {"releases": None},
        "added": {n: update_json(diff.b)["releases"][n] for n in diff.added},
        "removed": {n: update_json(diff.a)["releases"][n] for n in diff.removed},
        "changed": {n: rows(c) for n, c in diff.releases.items()},
        "config": rows(diff.config),
        "notes": history.notes,
    }
    return json.dumps(data, indent=2) + "\n"
