"""The one structural diff: leaf changes between two nested structures, with paths, secrets masked.

Used by `make diff` (rendered objects against what Helm applied), `make drift`
(Helm's record and namespace metadata before and after a refresh) and
`make env-diff` (two stacks' resolved values); audit and parity are meant to
use it too. Two entry points:

- `diff(before, after)` for two nested structures (values, one object):
  maps are walked key by key, lists index by index (`rules[3].verbs`), and
  every leaf that differs is one `Change(path, before, after)`; a key or
  item on one side only is a change from or to `ABSENT`.
- `diff_objects(before, after)` for two object maps (`model.manifest.parse_manifest`
  keys): objects added, removed, and per changed object its leaf changes.
  Secret `data`/`stringData` is masked on both sides first.

Masking: a change at or under one of `secret_paths` shows only as `MASK`
(present, absent or changed, never the value); every string shown is also
scrubbed of the literal `secrets` given (as is, base64, JSON-escaped).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.manifest import ObjectKey, mask_object, scrub
from model.values import MASK


class _Absent:
    """The side of a change where the path does not exist."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()
"""Before of an added leaf, after of a removed one; shown as `(absent)`."""


@dataclass(frozen=True)
class Change:
    """One leaf that differs: its path (`spec.rules[3].verbs`), the value before and after (ABSENT when missing)."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """added, removed or changed."""
        if self.before is ABSENT:
            return "added"
        if self.after is ABSENT:
            return "removed"
        return "changed"

    def text(self) -> str:
        """`path: before -> after`, values as compact JSON, `(absent)` for a missing side; a masked change as `path: [secret] (changed)`."""
        if self.before == MASK and self.after == MASK:
            return f"{self.path}: {MASK} (changed)"
        return f"{self.path}: {show(self.before)} -> {show(self.after)}"

    def as_dict(self) -> dict[str, Any]:
        """For JSON output: path, kind, before and after as shown."""
        return {"path": self.path, "kind": self.kind, "before": show(self.before), "after": show(self.after)}


def show(value: Any) -> str:
    """A value as printed: compact JSON, the mask and `(absent)` as themselves."""
    if value is ABSENT or value == MASK:
        return repr(value) if value is ABSENT else MASK
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def join(prefix: str, key: Any) -> str:
    """The path of a map key under prefix: `a.b`; keys with dots or brackets are quoted (`labels["app.kubernetes.io/name"]`)."""
    text = str(key)
    if not text or any(c in text for c in '.[]"') or text != text.strip():
        return f"{prefix}[{json.dumps(text)}]"
    return f"{prefix}.{text}" if prefix else text


def diff(before: Any, after: Any, path: str = "", *, secret_paths: Iterable[str] = (), secrets: Iterable[str] = (),
         expand: bool = False) -> list[Change]:
    """Every leaf change from before to after, in path order; empty when they are equal.

    secret_paths: paths (in this function's notation, relative to `path`'s
    root) whose values are never shown; secrets: literal values to scrub from
    whatever is shown; expand: a map on one side only is shown as its leaves
    (`experiment.enabled: true -> (absent)`), not as one change of the map.
    """
    changes: list[Change] = []
    _walk(before, after, path, changes, expand)
    return _masked(changes, tuple(secret_paths), list(secrets))


def _walk(before: Any, after: Any, path: str, out: list[Change], expand: bool) -> None:
    if expand and before is ABSENT and isinstance(after, Mapping) and after:
        before = {}
    if expand and after is ABSENT and isinstance(before, Mapping) and before:
        after = {}
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            _walk(before.get(key, ABSENT), after.get(key, ABSENT), join(path, key), out, expand)
        return
    if isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            _walk(before[index] if index < len(before) else ABSENT, after[index] if index < len(after) else ABSENT,
                  f"{path}[{index}]", out, expand)
        return
    # bool is an int in Python: True == 1 must still be a change.
    if before is ABSENT and after is ABSENT:
        return
    if before is not ABSENT and after is not ABSENT and type(before) is type(after) and before == after:
        return
    out.append(Change(path or "(top)", before, after))


def _masked(changes: list[Change], secret_paths: tuple[str, ...], secrets: list[str]) -> list[Change]:
    result = []
    for change in changes:
        if any(_under(change.path, p) for p in secret_paths):
            before = ABSENT if change.before is ABSENT else MASK
            after = ABSENT if change.after is ABSENT else MASK
            result.append(Change(change.path, before, after))
        elif secrets:
            result.append(Change(scrub(change.path, secrets), _scrubbed(change.before, secrets), _scrubbed(change.after, secrets)))
        else:
            result.append(change)
    return result


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    return value if value is ABSENT else scrub(value, secrets)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


@dataclass
class ObjectsDiff:
    """What differs between two object maps: keys added and removed, leaf changes per changed object."""

    added: list[ObjectKey] = field(default_factory=list)
    removed: list[ObjectKey] = field(default_factory=list)
    changed: dict[ObjectKey, list[Change]] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def counts(self) -> tuple[int, int, int]:
        """(added, changed, removed)."""
        return len(self.added), len(self.changed), len(self.removed)


def diff_objects(before: Mapping[ObjectKey, Mapping[str, Any]], after: Mapping[ObjectKey, Mapping[str, Any]],
                 secrets: Iterable[str] = ()) -> ObjectsDiff:
    """Objects only in after (added), only in before (removed), and the leaf changes of those in both.

    Secret data is masked on both sides and the literal secrets scrubbed from
    everything shown, so a changed secret never prints.
    """
    known = list(secrets)
    result = ObjectsDiff(added=sorted(k for k in after if k not in before), removed=sorted(k for k in before if k not in after))
    for key in sorted(k for k in after if k in before):
        old, new = mask_object(before[key], known), mask_object(after[key], known)
        if old != new:
            changes = diff(old, new, secrets=known)
            if changes:
                result.changed[key] = changes
    return result
