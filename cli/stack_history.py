"""Read a stack's history from its backend: the Pulumi CLI's list of updates, with the state each one left.

`pulumi stack history --json` gives every update (kind, result, times,
message, environment, config, resource changes) on every backend. The state
after each update comes from the backend's own copy of it (cli/state_store.py),
because the pinned CLI exports only the latest state of a DIY stack. Where no
reader exists for the storage (an object store), the latest state comes from
`pulumi stack export` and the earlier ones are missing, which the history notes.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from cli.process import ROOT, ToolError
from cli.pulumi import StackSummary, redact_url, stack_export, stack_history, stack_ls
from cli.state_store import StateStore, open_store
from model.errors import InputError
from model.history import History, ReleaseRecord, StoredUpdate, Update, build_updates, deployment_of, releases_of
from model.stackfile import PROJECT

DEFAULT_BACKEND = f"file://{ROOT / '.state' / 'backend'}"
# CLI calls of the fleet view at a time: each is mostly waiting on the backend.
FLEET_PARALLEL = 4
OBJECT_NAME = re.compile(r"^(?P<stack>.+)-(?P<ns>\d+)\.(?P<kind>history|checkpoint)\.json(?:\.gz|\.zst)?$")


def backend_url(url: str | None = None) -> str:
    """--backend, else PULUMI_BACKEND_URL, else the project's default file backend (as `make up` uses)."""
    return url or os.environ.get("PULUMI_BACKEND_URL") or DEFAULT_BACKEND


def project_name(root: Path) -> str:
    """The project name from Pulumi.yaml (state is stored per project)."""
    path = root / "Pulumi.yaml"
    if not path.is_file():
        return PROJECT
    name = (yaml.safe_load(path.read_text()) or {}).get("name")
    return str(name) if name else PROJECT


def stored_updates(store: StateStore, project: str, stack: str) -> list[StoredUpdate]:
    """The history entries of a stack and the state stored beside each, oldest first (by the key's time)."""
    objects = store.read_prefix(f".pulumi/history/{project}/{stack}/")
    if not objects:  # backends made before project folders
        objects = store.read_prefix(f".pulumi/history/{stack}/")
    entries: dict[int, dict[str, tuple[str, bytes]]] = {}
    for key, data in objects.items():
        match = OBJECT_NAME.match(key.rsplit("/", 1)[-1])
        if match and match["stack"] == stack:
            entries.setdefault(int(match["ns"]), {})[match["kind"]] = (key, data)
    result = []
    for _, parts in sorted(entries.items()):
        if "history" not in parts:
            continue  # a checkpoint copied before its entry was written: an update still being recorded
        key, data = parts["history"]
        entry = _json(key, data)
        checkpoint = deployment_of(_json(*parts["checkpoint"])) if "checkpoint" in parts else None
        result.append(StoredUpdate(key=key, entry=entry if isinstance(entry, dict) else {}, deployment=checkpoint))
    return result


def _json(key: str, data: bytes) -> object:
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise InputError(f"{key}: not valid JSON ({error}); the backend's object is damaged") from None


def load_history(url: str, root: Path, stack: str) -> History:
    """Every update of a stack, oldest first, numbered from 1, with the releases each one left.

    InputError when the backend holds no such stack or no update of it;
    ToolError when the CLI or the storage cannot be read.
    """
    stack = stack.rsplit("/", 1)[-1]
    project = project_name(root)
    store = open_store(url)
    shown = store.description if store else redact_url(url)
    try:
        rows = stack_history(url, root, stack)
    except ToolError as error:
        if "no stack named" not in str(error):
            raise
        known = sorted(s.short_name for s in stack_ls(url, root))
        raise InputError(f"stack {stack}: not in {shown} (project {project}); stacks there: {known or 'none'}") from None
    if not rows:
        raise InputError(f"stack {stack}: no updates recorded in {shown} (project {project})")
    history = History(stack=stack, project=project, backend=shown, updates=[])
    stored: list[StoredUpdate] | None = None
    latest = None
    if store is not None:
        try:
            stored = stored_updates(store, project, stack)
        except InputError as error:
            if ".zst" not in str(error):
                raise
            history.notes.append(f"earlier states unreadable: {error}")
    else:
        history.notes.append(f"{shown}: the audit has no reader for this object store's objects; the releases shown are those of the latest "
                             "state (`pulumi stack export`), earlier updates show none")
    if stored is None:
        latest = deployment_of(stack_export(url, root, stack))
    history.updates = build_updates(rows, stored, history.ciphertexts, latest)
    return history


@dataclass(frozen=True)
class StackState:
    """What a stack runs now, from the backend: its newest history entry and its current state."""

    name: str
    last: Update | None
    """The newest entry of `pulumi stack history` (None: never updated)."""
    releases: dict[str, ReleaseRecord] | None
    """The Helm releases of the current state (`pulumi stack export`); None when the stack holds no state."""
    in_progress: bool


def load_fleet(url: str, root: Path) -> tuple[str, list[StackState], set[str]]:
    """Every stack of the project in the backend: (backend as shown, stacks by name, ciphertexts read).

    Two CLI calls a stack (newest history entry, export), four stacks at a time; nothing decrypts.
    """
    seen: set[str] = set()

    def one(summary: StackSummary) -> StackState:
        name = summary.short_name
        rows = stack_history(url, root, name, page_size=1)
        last = build_updates(rows[:1], None, seen)[0] if rows else None
        deployment = deployment_of(stack_export(url, root, name)) if rows or summary.resource_count else None
        releases = releases_of(deployment, seen) if deployment is not None else None
        return StackState(name=name, last=last, releases=releases, in_progress=summary.update_in_progress)

    with ThreadPoolExecutor(max_workers=FLEET_PARALLEL) as pool:
        stacks = list(pool.map(one, sorted(stack_ls(url, root), key=lambda s: s.short_name)))
    return redact_url(url), stacks, seen
