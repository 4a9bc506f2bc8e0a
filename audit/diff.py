"""What changed between two updates of a stack: releases, chart versions and digests, values, Helm options, config.

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
from model.history import History, Secret, Update, ran_by, show, when
from model.values import MASK, flatten

ABSENT = "(absent)"
# A path on one side only.
_MISSING = object()


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


def _shown(value: Any) -> str:
    return ABSENT if value is _MISSING else show(value)


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
    """Leaf differences; secret_change(path) decides for a path that is secret on both sides."""
    flat_old, flat_new = flatten(old), flatten(new)
    changes = []
    for path in sorted(set(flat_old) | set(flat_new)):
        before, after = flat_old.get(path, _MISSING), flat_new.get(path, _MISSING)
        if isinstance(before, Secret) and isinstance(after, Secret):
            note = secret_change(path)
            if note:
                changes.append(Change(f"{prefix}{path}", MASK, MASK, note))
        elif isinstance(before, Secret) or isinstance(after, Secret):
            changes.append(Change(f"{prefix}{path}", _shown(before), _shown(after), "secret on one side only"))
        elif before is _MISSING or after is _MISSING or before != after or type(before) is not type(after):
            changes.append(Change(f"{prefix}{path}", _shown(before), _shown(after)))
    return changes


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
        changes = [Change(label, getattr(old, attr) or ABSENT, getattr(new, attr) or ABSENT) for label, attr in facts if getattr(old, attr) != getattr(new, attr)]
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
