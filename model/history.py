"""A stack's update history as data: what `pulumi stack history` lists, with the state each update left.

Plain functions on what the CLI printed and what the backend stored
(cli/stack_history.py reads both). Nothing here decrypts: a secret is a
`Secret`, shown only as the mask; its ciphertext is kept to tell whether a
secret config value was set again, and to check that no output holds one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from model.errors import InputError
from model.identity import RELEASE_TYPE, Description, is_secret, urn_name
from model.values import MASK

# Helm release inputs shown as chart facts or values, not as options.
NOT_OPTIONS = {"values", "description", "chart", "version", "name", "namespace"}
# Environment metadata worth showing: git, hosting, CI and how the update ran.
ENV_PREFIXES = ("git.", "vcs.", "ci.", "exec.")
# toolchain/update_message.py starts every `make up` message with the runner (CI actor or local user).
RUNNER = re.compile(r"^by (?P<who>[^\s:]+): ")


class Secret:
    """A secret read from the state: shown only as the mask, never decrypted.

    ciphertext is None when only the CLI's blinded view was available: then
    nobody can tell whether it was set again.
    """

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str | None) -> None:
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__


@dataclass(frozen=True)
class ReleaseRecord:
    """One Helm release as an update left it in the state."""

    name: str
    namespace: str
    chart: str
    """Chart path as the program passed it (relative to the project root)."""
    version: str
    digest: str
    """sha256 of the chart content (own charts) or of the locked archive (external charts)."""
    extra: str
    """The rest of the release description: what else shapes the rendered chart (post-render), or ''."""
    status: str
    revision: int | None
    values: dict[str, Any]
    """Values passed to Helm; secrets are `Secret` markers."""
    options: dict[str, Any]
    """The other Helm inputs (atomic, timeout, ...), plain."""

    def masked_values(self) -> dict[str, Any]:
        """The values with every secret shown as the mask."""
        return {k: masked(v) for k, v in self.values.items()}


@dataclass(frozen=True)
class Update:
    """One entry of a stack's history with the state it left."""

    number: int
    kind: str
    result: str
    start: int
    end: int | None
    message: str
    environment: dict[str, str]
    resource_changes: dict[str, int]
    config: dict[str, Any]
    """Config by full key; secure values are `Secret` markers."""
    releases: dict[str, ReleaseRecord] | None
    """None when the state after this update cannot be read (see History.notes)."""
    source: str
    """Where the entry was read: the backend's key of its history object, or `pulumi stack history`."""

    @property
    def commit(self) -> str | None:
        return self.environment.get("git.head") or None

    @property
    def dirty(self) -> bool:
        return self.environment.get("git.dirty") == "true"

    @property
    def duration_s(self) -> int | None:
        return None if self.end is None else self.end - self.start


@dataclass
class History:
    """Every recorded update of a stack, oldest first, numbered from 1."""

    stack: str
    project: str
    backend: str
    """The backend as shown: its URL, credentials masked."""
    updates: list[Update]
    ciphertexts: set[str] = field(default_factory=set)
    """Every ciphertext read, so outputs can be checked to hold none."""
    notes: list[str] = field(default_factory=list)
    """What the reader could not see (e.g. earlier states on an object store), for every output."""

    def get(self, number: int) -> Update:
        if not 1 <= number <= len(self.updates):
            raise InputError(f"stack {self.stack} has updates 1..{len(self.updates)} in {self.backend}; there is no update {number} (`make audit STACK={self.stack}` lists them)")
        return self.updates[number - 1]

    def guard(self, text: str) -> str:
        """Return text unchanged, or fail if it holds a ciphertext (a bug here, never shown to anyone)."""
        if any(c and c in text for c in self.ciphertexts):
            raise RuntimeError("refusing to print: the output would contain a ciphertext from the state")
        return text


@dataclass(frozen=True)
class StoredUpdate:
    """An update's objects as the backend stores them: the history entry and the state copied beside it."""

    key: str
    entry: dict[str, Any]
    deployment: dict[str, Any] | None
    """The checkpoint's `latest` (the deployment), None when none was stored."""


# --- decoding ---------------------------------------------------------------------

def decode(value: Any, seen: set[str], config: bool = False) -> Any:
    """Plain data with every secret replaced by a `Secret` (its ciphertext noted in `seen`)."""
    if isinstance(value, dict):
        if is_secret(value):
            text = str(value.get("ciphertext") or "")
            seen.add(text)
            return Secret(text)
        if config and set(value) == {"secure"}:
            seen.add(str(value["secure"]))
            return Secret(str(value["secure"]))
        return {str(k): decode(v, seen, config) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, seen, config) for v in value]
    return value


def masked(value: Any) -> Any:
    """value with every `Secret` replaced by the mask."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def deployment_of(checkpoint: Any) -> dict[str, Any] | None:
    """The deployment in a stored checkpoint (`checkpoint.latest`) or an export (`deployment`)."""
    if not isinstance(checkpoint, dict):
        return None
    inner = checkpoint.get("deployment")
    if inner is None:
        inner = (checkpoint.get("checkpoint") or {}).get("latest")
    return inner if isinstance(inner, dict) else None


def releases_of(deployment: Mapping[str, Any], seen: set[str]) -> dict[str, ReleaseRecord]:
    """The Helm releases of a deployment, by release name (a pending delete is not deployed)."""
    resources = deployment.get("resources") or []
    by_urn = {r.get("urn"): r for r in resources if isinstance(r, dict)}
    releases: dict[str, ReleaseRecord] = {}
    for resource in by_urn.values():
        if resource.get("type") != RELEASE_TYPE or resource.get("delete"):
            continue
        inputs = decode(resource.get("inputs") or {}, seen)
        outputs = decode(resource.get("outputs") or {}, seen)
        name = str(inputs.get("name") or outputs.get("name") or urn_name(str(resource.get("urn", ""))))
        described = Description.parse(str(inputs.get("description") or ""))
        if described:
            version, digest, extra = described.version, described.digest, described.extra
        else:
            # Older programs put these only on the LocalRelease component's outputs.
            parent = (by_urn.get(resource.get("parent")) or {}).get("outputs") or {}
            version, digest, extra = str(parent.get("version") or inputs.get("version") or ""), str(parent.get("digest") or ""), ""
        status = outputs.get("status") if isinstance(outputs.get("status"), dict) else {}
        values = inputs.get("values")
        releases[name] = ReleaseRecord(
            name=name, namespace=str(inputs.get("namespace") or ""), chart=str(inputs.get("chart") or ""),
            version=version, digest=digest, extra=extra, status=str(status.get("status") or "unknown"),
            revision=status.get("revision") if isinstance(status.get("revision"), int) else None,
            values=values if isinstance(values, dict) else {"": values},
            options={k: v for k, v in sorted(inputs.items()) if k not in NOT_OPTIONS and not isinstance(v, dict | list)},
        )
    return dict(sorted(releases.items()))


def epoch(text: str | None) -> int | None:
    """Seconds since 1970 of the CLI's RFC 3339 times (`2026-12-02T02:12:38Z`)."""
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _cli_config(rows: Mapping[str, Any], stored: Mapping[str, Any], seen: set[str]) -> dict[str, Any]:
    """Config by key: plain values as the CLI printed them; secrets as `Secret` with the stored ciphertext, when there is one."""
    config: dict[str, Any] = {}
    for key, row in rows.items():
        if not isinstance(row, dict):
            continue
        if row.get("secret"):
            raw = stored.get(key)
            config[key] = decode(raw, seen, config=True) if isinstance(raw, dict) and "secure" in raw else Secret(None)
        elif "objectValue" in row:
            config[key] = row["objectValue"]
        else:
            config[key] = row.get("value")
    return config


def build_updates(cli_rows: list[dict[str, Any]], stored: list[StoredUpdate] | None, seen: set[str],
                  latest: dict[str, Any] | None = None) -> list[Update]:
    """Updates numbered 1..n, oldest first, from `pulumi stack history --json` (newest first) and the stored objects.

    stored (oldest first) supplies each update's state and its secrets' ciphertexts;
    both lists describe the same objects, so they must agree entry by entry
    (kind and start time), else InputError (the history changed while it was read:
    run again). Without stored objects, `latest` (an export) is the state of the
    newest update; the earlier ones have none.
    """
    rows = list(reversed(cli_rows))
    if stored is not None and len(stored) > len(rows):
        stored = stored[:len(rows)]  # updates that ended after the CLI listed the history (the CLI is read first)
    if stored is not None and len(stored) != len(rows):
        raise InputError(f"the backend holds {len(stored)} history entries, `pulumi stack history` lists {len(rows)}: the history changed while it was read; run again")
    updates = []
    for index, row in enumerate(rows):
        record = stored[index] if stored is not None else None
        if record is not None:
            entry = record.entry
            if (str(entry.get("kind")), entry.get("startTime")) != (str(row.get("kind")), epoch(row.get("startTime"))):
                raise InputError(f"{record.key}: {entry.get('kind')} at {entry.get('startTime')} where `pulumi stack history` lists "
                                 f"{row.get('kind')} at {row.get('startTime')}: the history changed while it was read; run again")
        deployment = record.deployment if record is not None else (latest if index == len(rows) - 1 else None)
        result = str(row.get("result") or "unknown")
        updates.append(Update(
            number=index + 1,
            kind=str(row.get("kind") or "unknown"),
            result=result,
            start=epoch(row.get("startTime")) or 0,
            end=epoch(row.get("endTime")) if result != "in-progress" else None,
            message=str(row.get("message") or ""),
            environment={str(k): str(v) for k, v in (row.get("environment") or {}).items()},
            resource_changes={str(k): int(v) for k, v in (row.get("resourceChanges") or {}).items()},
            config=_cli_config(row.get("config") or {}, (record.entry.get("config") or {}) if record else {}, seen),
            releases=None if deployment is None else releases_of(deployment, seen),
            source=record.key if record else "pulumi stack history",
        ))
    return updates


# --- plain facts shown by every view ------------------------------------------------------

def when(seconds: int | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ran_by(update: Update) -> str:
    """Who ran it, as far as Pulumi records it: the runner `make up` names in the message, CI build, commit author.

    DIY backends do not record the person who ran an update; the git author and
    committer are those of the checked-out commit.
    """
    env = update.environment
    parts = []
    runner = RUNNER.match(update.message)
    if runner:
        parts.append(runner["who"])
    if env.get("ci.system"):
        build = env.get("ci.build.number") or env.get("ci.build.id") or ""
        parts.append(f"CI {env['ci.system']}{' #' + build if build else ''}")
    if env.get("git.author"):
        parts.append(f"{env['git.author']} (commit author)")
    if env.get("git.committer") and env.get("git.committer") != env.get("git.author"):
        parts.append(f"{env['git.committer']} (committer)")
    return ", ".join(parts) or env.get("exec.kind", "unknown")


def changes_text(changes: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(changes.items())) or "-"

