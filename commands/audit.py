"""Audit trail of a stack from its state backend: report, diff of two updates, rollback.

  python -m commands.audit --stack dev [--out-dir DIR]              report: Markdown, JSON and HTML
  python -m commands.audit diff --stack dev --from 3 --to 5          what changed between two updates
  python -m commands.audit restore --stack dev --version 3 [--apply] roll the stack's data back to update 3
  python -m commands.audit verify --stack dev --version 3            does this checkout reproduce update 3?

Reads a file backend directly. Each update leaves two files in
`.pulumi/history/<project>/<stack>/`: `<stack>-<unix ns>.history.json` (what
`pulumi stack history` lists: kind, result, times, message, environment
metadata, config, resource changes) and `<stack>-<unix ns>.checkpoint.json`
(the state right after the update). The file backend stores no update
number (`pulumi stack history --json` shows version 0 for every update), so
updates are numbered here 1..n in the order they ran, oldest first, as
Pulumi Cloud numbers them.

Nothing here needs the passphrase, the engine or a cluster, and nothing
decrypts: a secret in the state is a ciphertext, compared but never printed.
"""

from __future__ import annotations

import argparse
import gzip
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from commands.charts import write_lock
from commands.values import resolve_stack
from model.catalog import load_catalog
from model.charts import load_lock, sha256_file
from model.errors import InputError, entry_point
from model.identity import RELEASE_TYPE, Description, is_secret
from model.stackfile import PROJECT, StackFile, chain, file_name, inherited, parse_stack_file, stack_chain
from model.values import MASK, flatten

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BACKEND = f"file://{ROOT / '.state' / 'backend'}"
HISTORY_NAME = re.compile(r"^(?P<stack>.+)-(?P<ns>\d+)\.history\.json(?P<gz>\.gz)?$")
# Environment metadata worth showing: git, hosting, CI and how the update ran.
ENV_PREFIXES = ("git.", "vcs.", "ci.", "exec.")
# What a rollback takes from an update's commit: the data every stack is made
# of (plus the stack's own file), never the program.
DATA_PATHS = ("catalog", "values", "charts")
# Helm release inputs shown as chart facts or values, not as options.
NOT_OPTIONS = {"values", "description", "chart", "version", "name", "namespace"}
GIT_TIMEOUT_S = 60
ABSENT = "(absent)"
# A path on one side only.
_MISSING = object()


class Secret:
    """A secret read from the state: shown only as the mask, never decrypted."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__


@dataclass(frozen=True)
class ReleaseRecord:
    """One Helm release as an update left it in the checkpoint."""

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
        return {k: _masked(v) for k, v in self.values.items()}


@dataclass(frozen=True)
class Update:
    """One entry of a stack's history with the checkpoint it left."""

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
    """None when the backend kept no checkpoint for this update."""
    history_file: str

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
    backend: Path
    folder: Path
    updates: list[Update]
    ciphertexts: set[str] = field(default_factory=set)
    """Every ciphertext read, so outputs can be checked to hold none."""

    def get(self, number: int) -> Update:
        if not 1 <= number <= len(self.updates):
            raise InputError(f"stack {self.stack} has updates 1..{len(self.updates)} in {self.folder}; there is no update {number} (`make audit STACK={self.stack}` lists them)")
        return self.updates[number - 1]

    def guard(self, text: str) -> str:
        """Return text unchanged, or fail if it holds a ciphertext (a bug here, never shown to anyone)."""
        if any(c and c in text for c in self.ciphertexts):
            raise RuntimeError("refusing to print: the output would contain a ciphertext from the state")
        return text


# --- reading the backend ----------------------------------------------------

def backend_path(url: str | None = None) -> Path:
    """The folder of a file backend: --backend, else PULUMI_BACKEND_URL, else the project's default."""
    url = url or os.environ.get("PULUMI_BACKEND_URL") or DEFAULT_BACKEND
    if not url.startswith("file://"):
        raise InputError(f"state backend {url!r}: the audit reads a file backend (file://...); for a cloud backend use its console or `pulumi stack history`")
    path = Path(os.path.expanduser(url.removeprefix("file://").split("?", 1)[0]))
    if not (path / ".pulumi").is_dir():
        raise InputError(f"{path}: no Pulumi state here (.pulumi/ is missing); set PULUMI_BACKEND_URL (or --backend) to the backend `make up` used")
    return path


def project_name(root: Path) -> str:
    """The project name from Pulumi.yaml (state is stored per project)."""
    path = root / "Pulumi.yaml"
    if not path.is_file():
        return PROJECT
    name = (yaml.safe_load(path.read_text()) or {}).get("name")
    return str(name) if name else PROJECT


def load_history(backend: Path, project: str, stack: str) -> History:
    """Read every history entry and checkpoint of a stack; raise InputError when there are none."""
    stack = stack.rsplit("/", 1)[-1]
    folder = backend / ".pulumi" / "history" / project / stack
    if not folder.is_dir():
        legacy = backend / ".pulumi" / "history" / stack  # backends made before project folders
        if not legacy.is_dir():
            known = sorted(p.name.removesuffix(".json") for p in (backend / ".pulumi" / "stacks" / project).glob("*.json"))
            raise InputError(f"stack {stack}: no updates recorded in {backend} (project {project}); stacks there: {known or 'none'}")
        folder = legacy
    entries: list[tuple[int, Path]] = []
    for path in folder.iterdir():
        match = HISTORY_NAME.match(path.name)
        if match and match["stack"] == stack:
            entries.append((int(match["ns"]), path))
        elif path.name.endswith((".json.zst",)):
            raise InputError(f"{path}: zstd-compressed state; the audit reads plain or gzip JSON (turn compression off or decompress the history)")
    if not entries:
        raise InputError(f"stack {stack}: {folder} holds no update history")
    history = History(stack=stack, project=project, backend=backend, folder=folder, updates=[])
    for number, (_, path) in enumerate(sorted(entries), start=1):
        history.updates.append(_read_update(number, path, history.ciphertexts))
    return history


def _read_json(path: Path) -> Any:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error}); the backend file is damaged") from None


def _read_update(number: int, path: Path, seen: set[str]) -> Update:
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not a Pulumi history entry")
    checkpoint = path.with_name(path.name.replace(".history.json", ".checkpoint.json"))
    releases = _read_releases(checkpoint, seen) if checkpoint.is_file() else None
    result = str(raw.get("result") or "unknown")
    end = raw.get("endTime")
    return Update(
        number=number,
        kind=str(raw.get("kind") or "unknown"),
        result=result,
        start=int(raw.get("startTime") or 0),
        end=int(end) if isinstance(end, int) and result != "in-progress" else None,
        message=str(raw.get("message") or ""),
        environment={str(k): str(v) for k, v in (raw.get("environment") or {}).items()},
        resource_changes={str(k): int(v) for k, v in (raw.get("resourceChanges") or {}).items()},
        config={str(k): _decode(v, seen, config=True) for k, v in (raw.get("config") or {}).items()},
        releases=releases,
        history_file=path.name,
    )


def _decode(value: Any, seen: set[str], config: bool = False) -> Any:
    """Plain data with every secret replaced by a `Secret` (its ciphertext noted in `seen`)."""
    if isinstance(value, dict):
        if is_secret(value):
            text = str(value.get("ciphertext") or "")
            seen.add(text)
            return Secret(text)
        if config and set(value) == {"secure"}:
            seen.add(str(value["secure"]))
            return Secret(str(value["secure"]))
        return {str(k): _decode(v, seen, config) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, seen, config) for v in value]
    return value


def _read_releases(path: Path, seen: set[str]) -> dict[str, ReleaseRecord]:
    raw = _read_json(path)
    resources = ((raw.get("checkpoint") or {}).get("latest") or {}).get("resources") or [] if isinstance(raw, dict) else []
    by_urn = {r.get("urn"): r for r in resources if isinstance(r, dict)}
    releases: dict[str, ReleaseRecord] = {}
    for resource in by_urn.values():
        if resource.get("type") != RELEASE_TYPE or resource.get("delete"):
            continue  # a pending delete is not deployed
        inputs = _decode(resource.get("inputs") or {}, seen)
        outputs = _decode(resource.get("outputs") or {}, seen)
        name = str(inputs.get("name") or outputs.get("name") or resource.get("urn", "").rsplit("::", 1)[-1])
        version, digest, extra = "", "", ""
        described = Description.parse(str(inputs.get("description") or ""))
        if described:
            version, digest, extra = described.version, described.digest, described.extra
        else:
            # Older programs put these only on the LocalRelease component's outputs.
            parent = (by_urn.get(resource.get("parent")) or {}).get("outputs") or {}
            version, digest = str(parent.get("version") or inputs.get("version") or ""), str(parent.get("digest") or "")
        status = outputs.get("status") if isinstance(outputs.get("status"), dict) else {}
        values = inputs.get("values")
        releases[name] = ReleaseRecord(
            name=name,
            namespace=str(inputs.get("namespace") or ""),
            chart=str(inputs.get("chart") or ""),
            version=version,
            digest=digest,
            extra=extra,
            status=str(status.get("status") or "unknown"),
            revision=status.get("revision") if isinstance(status.get("revision"), int) else None,
            values=values if isinstance(values, dict) else {"": values},
            options={k: v for k, v in sorted(inputs.items()) if k not in NOT_OPTIONS and not isinstance(v, dict | list)},
        )
    return dict(sorted(releases.items()))


# --- plain helpers ----------------------------------------------------------

def _masked(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def show(value: Any) -> str:
    """A leaf as people read it (JSON), secrets as the mask."""
    if value is _MISSING:
        return ABSENT
    if isinstance(value, Secret):
        return MASK
    return json.dumps(_masked(value), sort_keys=True)



def when(epoch: int | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ran_by(update: Update) -> str:
    """Who ran it, as far as Pulumi records it: CI build, else the commit's author.

    The file backend does not record the person who ran an update; the git
    author and committer are those of the checked-out commit.
    """
    env = update.environment
    parts = []
    if env.get("ci.system"):
        build = env.get("ci.build.number") or env.get("ci.build.id") or ""
        parts.append(f"CI {env['ci.system']}{' #' + build if build else ''}")
    if env.get("git.author"):
        parts.append(f"{env['git.author']} (commit author)")
    if env.get("git.committer") and env.get("git.committer") != env.get("git.author"):
        parts.append(f"{env['git.committer']} (committer)")
    return ", ".join(parts) or env.get("exec.kind", "unknown")


def changes_text(changes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(changes.items())) or "-"


# --- report -------------------------------------------------------------------

def update_json(update: Update) -> dict[str, Any]:
    """An update as the JSON report holds it (secrets masked, no ciphertext)."""
    env = update.environment
    return {
        "number": update.number,
        "kind": update.kind,
        "result": update.result,
        "start": iso(update.start),
        "end": iso(update.end),
        "durationSeconds": update.duration_s,
        "message": update.message,
        "ranBy": ran_by(update),
        "git": {"commit": update.commit, "branch": env.get("git.headName"), "dirty": update.dirty,
                "author": env.get("git.author"), "authorEmail": env.get("git.author.email"),
                "committer": env.get("git.committer"), "committerEmail": env.get("git.committer.email")},
        "environment": {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES)},
        "resourceChanges": update.resource_changes,
        "releases": None if update.releases is None else {
            name: {"namespace": r.namespace, "chart": r.chart, "version": r.version, "digest": r.digest, "postrender": r.extra or None,
                   "status": r.status, "revision": r.revision, "values": r.masked_values()}
            for name, r in update.releases.items()
        },
        "historyFile": update.history_file,
    }


def report_json(history: History) -> str:
    data = {
        "stack": history.stack,
        "project": history.project,
        "backend": f"file://{history.backend}",
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numbering": "1 = oldest update; the file backend stores no numbers (`pulumi stack history` shows version 0)",
        "updates": [update_json(u) for u in history.updates],
    }
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def report_markdown(history: History) -> str:
    lines = [
        f"# Audit of stack `{history.stack}` (project {history.project})",
        "",
        f"State backend `file://{history.backend}`; {len(history.updates)} updates, numbered from 1 (oldest). "
        "Secrets are never shown: the state holds them encrypted. Times are UTC.",
        "",
        "| # | kind | result | start | end | took | ran by | commit | message | resource changes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for u in history.updates:
        commit = f"`{u.commit[:12]}`{' (dirty)' if u.dirty else ''}" if u.commit else "-"
        took = "-" if u.duration_s is None else f"{u.duration_s} s"
        lines.append(f"| {u.number} | {u.kind} | {u.result} | {when(u.start)} | {when(u.end)} | {took} | {_md(ran_by(u))} | {commit} | {_md(u.message)} | {changes_text(u.resource_changes)} |")
    for u in history.updates:
        env = u.environment
        lines += ["", f"## Update {u.number}: {u.kind}, {u.result}", ""]
        lines.append(f"- start {when(u.start)}, end {when(u.end)}" + ("" if u.duration_s is None else f" ({u.duration_s} s)"))
        lines.append(f"- ran by: {_md(ran_by(u))}")
        if u.commit:
            lines.append(f"- commit `{u.commit}` on {env.get('git.headName', '?')}" + (" with uncommitted changes" if u.dirty else ""))
        lines.append(f"- message: {_md(u.message) or '-'}")
        lines.append(f"- resource changes: {changes_text(u.resource_changes)}")
        ci = {k: v for k, v in sorted(env.items()) if k.startswith(("ci.", "vcs.", "exec."))}
        if ci:
            lines.append("- environment: " + ", ".join(f"{k}={_md(v)}" for k, v in ci.items()))
        if u.releases is None:
            lines += ["", "No checkpoint was stored for this update."]
        elif not u.releases:
            lines += ["", "No release deployed after this update."]
        else:
            lines += ["", "| release | namespace | chart | version | digest (sha256) | status | revision |", "|---|---|---|---|---|---|---|"]
            for r in u.releases.values():
                lines.append(f"| {r.name} | {r.namespace} | `{r.chart}` | {r.version} | `{r.digest}` | {r.status} | {r.revision if r.revision is not None else '-'} |")
    return "\n".join(lines) + "\n"


HTML_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
code{font-size:12px}.tl{border-left:3px solid #999;margin:1em 0 1em 1em;padding-left:1.5em}
.ev{position:relative;margin:0 0 1.2em}.ev:before{content:"";position:absolute;left:-2.05em;top:.2em;width:.9em;height:.9em;border-radius:50%;background:#999}
.succeeded:before{background:#2a2}.failed:before{background:#c22}.in-progress:before{background:#e90}
.meta{color:#555}.bar{display:inline-block;height:.6em;background:#68a;vertical-align:middle;margin-left:.5em}
"""


def report_html(history: History) -> str:
    """A static page (no scripts, no external assets): a timeline and the releases of each update."""
    e = html.escape
    longest = max([u.duration_s or 0 for u in history.updates] + [1])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Audit of {e(history.stack)}</title><style>{HTML_STYLE}</style></head><body>",
             f"<h1>Audit of stack <code>{e(history.stack)}</code></h1>",
             f"<p class='meta'>Project {e(history.project)}, backend <code>file://{e(str(history.backend))}</code>; "
             f"{len(history.updates)} updates numbered from 1 (oldest); times UTC; secrets never shown.</p><div class='tl'>"]
    for u in history.updates:
        width = int(200 * (u.duration_s or 0) / longest)
        commit = f"<code>{e(u.commit[:12])}</code>{' (dirty)' if u.dirty else ''}" if u.commit else "no commit recorded"
        parts.append(f"<div class='ev {e(u.result)}'><b>#{u.number} {e(u.kind)}</b> {e(u.result)} · {e(when(u.start))} → {e(when(u.end))}"
                     f"<span class='bar' style='width:{width}px' title='{u.duration_s} s'></span> {u.duration_s if u.duration_s is not None else '-'} s"
                     f"<div class='meta'>{e(ran_by(u))} · {commit} · {e(changes_text(u.resource_changes))}</div><div>{e(u.message)}</div>")
        if u.releases:
            parts.append("<table><tr><th>release</th><th>namespace</th><th>chart</th><th>version</th><th>digest</th><th>status</th></tr>")
            for r in u.releases.values():
                parts.append(f"<tr><td>{e(r.name)}</td><td>{e(r.namespace)}</td><td><code>{e(r.chart)}</code></td><td>{e(r.version)}</td>"
                             f"<td><code>{e(r.digest[:16])}…</code></td><td>{e(r.status)}</td></tr>")
            parts.append("</table>")
        parts.append("</div>")
    parts.append("</div></body></html>\n")
    return "".join(parts)


def write_report(history: History, out_dir: Path) -> list[Path]:
    """Write audit-<stack>.md/.json/.html; every text is checked to hold no ciphertext first."""
    texts = {
        f"audit-{history.stack}.md": report_markdown(history),
        f"audit-{history.stack}.json": report_json(history),
        f"audit-{history.stack}.html": report_html(history),
    }
    for text in texts.values():
        history.guard(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    return written


# --- diff of two updates -------------------------------------------------------

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


def _secret_config_changed(a: Update, b: Update) -> set[str]:
    """Secret config keys whose ciphertext differs: stack files keep a ciphertext until the secret is set again."""
    keys = {k for k, v in {**a.config, **b.config}.items() if isinstance(v, Secret)}
    changed = set()
    for key in keys:
        old, new = a.config.get(key), b.config.get(key)
        if not (isinstance(old, Secret) and isinstance(new, Secret) and old.ciphertext == new.ciphertext):
            changed.add(key)
    return changed


def _compare(old: dict[str, Any], new: dict[str, Any], prefix: str, secret_change: Callable[[str], str]) -> list[Change]:
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
            changes.append(Change(f"{prefix}{path}", show(before), show(after), "secret on one side only"))
        elif before is _MISSING or after is _MISSING or before != after or type(before) is not type(after):
            changes.append(Change(f"{prefix}{path}", show(before), show(after)))
    return changes


def diff_updates(history: History, a: Update, b: Update, secret_keys: dict[str, dict[str, str]]) -> UpdateDiff:
    """Releases added/removed, chart version/digest, values and options of each release, config.

    Secrets: the state re-encrypts every secret on every update, so two
    ciphertexts of an unchanged value differ. A secret value is reported
    changed when the secret config key it comes from (catalog) was set again
    between the two updates (stack files keep a ciphertext until then).
    """
    if a.releases is None or b.releases is None:
        missing = a if a.releases is None else b
        raise InputError(f"stack {history.stack}: the backend kept no checkpoint for update {missing.number}; cannot compare its releases")
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
        changes += _compare(old.values, new.values, "values.", secret_note)
        changes += _compare(old.options, new.options, "helm.", lambda _p: "")
        if changes:
            diff.releases[name] = changes

    def config_note(path: str) -> str:
        # Config keys (astrago-deploy:cluster) hold no dot: the key is the path's first part.
        return "changed: set again" if path.split(".", 1)[0] in changed_secrets else ""

    diff.config = _compare(a.config, b.config, "", config_note)
    return diff


def _update_line(u: Update) -> str:
    commit = f"{u.commit[:12]}{' (dirty)' if u.dirty else ''}" if u.commit else "no commit"
    return f"update {u.number}: {u.kind} {u.result} {when(u.start)} UTC, {commit}, by {ran_by(u)}: {u.message}"


def diff_text(history: History, diff: UpdateDiff) -> str:
    lines = [f"stack {history.stack}: update {diff.a.number} -> update {diff.b.number}", f"  {_update_line(diff.a)}", f"  {_update_line(diff.b)}"]
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
    }
    return json.dumps(data, indent=2) + "\n"


# --- rollback -----------------------------------------------------------------

def record_text(update: Update) -> str:
    """What update N deployed: per release its chart version, digest and values (secrets masked)."""
    lines = [f"# {_update_line(update)}"]
    for r in (update.releases or {}).values():
        lines.append(f"# {r.name}: namespace {r.namespace}, chart {r.chart} {r.version} sha256:{r.digest} ({r.status})")
        lines.append(yaml.safe_dump({r.name: r.masked_values()}, sort_keys=True).rstrip())
    return "\n".join(lines) + "\n"


def compare_tree(tree: Path, stack: str, update: Update, locked: dict[str, str] | None = None) -> list[str]:
    """How the stack resolved from `tree` differs from what `update` deployed (empty: it reproduces it).

    Compares the enabled releases, each one's namespace, chart version and
    digest and values (secrets by position only), and the secret config
    ciphertexts of the stack file with those the update ran with. locked:
    external chart -> sha256 from the lock as committed, which counts instead
    of the archive's (a scratch tree may hold stand-ins for missing archives).
    """
    deployment = resolve_stack(stack, tree)
    recorded = update.releases or {}
    problems = [f"release {n}: deployed by update {update.number}, not enabled by this configuration" for n in sorted(set(recorded) - set(deployment.releases))]
    problems += [f"release {n}: enabled by this configuration, not deployed by update {update.number}" for n in sorted(set(deployment.releases) - set(recorded))]
    for name in sorted(set(recorded) & set(deployment.releases)):
        was, now = recorded[name], deployment.releases[name]
        digest = (locked or {}).get(now.chart_name, now.chart_digest) if now.source != "local" else now.chart_digest
        for label, old, new in (("namespace", was.namespace, now.namespace), ("chart version", was.version, now.chart_version), ("chart digest", was.digest, digest)):
            if old != new:
                problems.append(f"release {name}: {label} {new} here, {old} in update {update.number}")
        for change in _compare(was.masked_values(), deployment.masked_values(name), "", lambda _p: ""):
            problems.append(f"release {name}: values.{change.path} is {change.new} here, {change.old} in update {update.number}")
    current = {k: v.get("secure") for k, v in _stack_config(tree, stack).items() if isinstance(v, dict) and "secure" in v}
    used = {k: v.ciphertext for k, v in update.config.items() if isinstance(v, Secret)}
    for key in sorted(set(current) | set(used)):
        if key not in used:
            problems.append(f"secret {key}: set in Pulumi.{stack}.yaml, not set when update {update.number} ran")
        elif key not in current:
            problems.append(f"secret {key}: set when update {update.number} ran, not in Pulumi.{stack}.yaml")
        elif current[key] != used[key]:
            problems.append(f"secret {key}: set again since update {update.number} (another ciphertext in Pulumi.{stack}.yaml)")
    return problems


def _git(root: Path, *args: str, check: bool = True, text: bool = True) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=text, timeout=GIT_TIMEOUT_S, check=check)


@dataclass(frozen=True)
class RestorePlan:
    """Where update N's configuration comes from and which paths it restores."""

    commit: str
    paths: list[str]
    """Paths (relative to the project root) present in the commit."""
    parents: tuple[str, ...]
    """Stack files of the stacks this one inherits from, nearest first (none when it inherits nothing)."""


def _restore_plan(root: Path, stack: str, update: Update) -> RestorePlan:
    """The commit and paths that hold update N's configuration; InputError when there is no automatic path."""
    if update.kind != "update":
        raise InputError(f"update {update.number} is a {update.kind}, which deploys no configuration; restore the `update` before it (`make audit STACK={stack}` lists them)")
    if update.releases is None:
        raise InputError(f"update {update.number}: the backend kept no checkpoint; nothing to compare a restore with")
    if not update.commit:
        raise InputError(f"update {update.number} recorded no git commit (it ran outside a git checkout); revert by hand from the record above (values per release) and `make up STACK={stack}`")
    try:
        _git(root, "rev-parse", "--show-toplevel")
    except (subprocess.CalledProcessError, OSError):
        raise InputError(f"{root}: not a git checkout; the rollback takes the configuration from commit {update.commit}") from None
    if _git(root, "cat-file", "-e", f"{update.commit}^{{commit}}", check=False).returncode != 0:
        raise InputError(f"commit {update.commit} (update {update.number}) is not in this clone; `git fetch` the branch that holds it and run again")
    wanted = [f"Pulumi.{stack}.yaml", *DATA_PATHS]
    present = [p for p in _git(root, "ls-tree", "--name-only", update.commit, "--", *wanted).stdout.split() if p]
    if f"Pulumi.{stack}.yaml" not in present:
        raise InputError(f"commit {update.commit} (update {update.number}) holds no Pulumi.{stack}.yaml; the stack file was not committed then, revert it by hand from the record above")
    commit = update.commit

    def at_commit(name: str) -> StackFile | None:
        if not _git(root, "ls-tree", "--name-only", commit, "--", file_name(name)).stdout.strip():
            return None
        return parse_stack_file(_git(root, "show", f"{commit}:./{file_name(name)}").stdout, name, f"{commit[:12]}:{file_name(name)}")

    # The stacks it inherits from, along the whole chain (model.stackfile's rule), as that commit held them.
    parents = tuple(file_name(f.stack) for f in chain(stack, at_commit)[1:])
    present.extend(parents)
    return RestorePlan(commit=update.commit, paths=present, parents=parents)


@dataclass(frozen=True)
class Scratch:
    """Update N's configuration written into a scratch folder, ready to resolve."""

    locked: dict[str, str]
    """External chart -> sha256 as the commit's lock records it."""
    missing: list[str]
    """`<chart> <version>` whose archive this checkout lacks (`make charts-sync` fetches them after the restore)."""
    archives: set[str]
    """Archive paths (relative to the charts folder) the commit's lock names."""


def _scratch_tree(root: Path, plan: RestorePlan, stack: str, target: Path) -> Scratch:
    """Write the plan's paths as they were in its commit into target.

    Chart archives are not in git: those the commit's lock names are copied
    from this checkout. One this checkout lacks (a version a later sync
    replaced) gets a stand-in there and its lock entry the stand-in's
    checksum: resolving reads no archive content, and the digest compared is
    the one the commit's lock records, which `make up` later checks the
    fetched archive against.
    """
    data = _git(root, "archive", "--format=tar", plan.commit, "--", *plan.paths, text=False).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
    charts_dir = _charts_dir(target, stack)
    if Path(charts_dir).is_absolute():
        return Scratch(locked={}, missing=[], archives=set())  # archives live outside the checkout: resolved as they are
    lock = load_lock(target / charts_dir)
    entries, missing = [], []
    for entry in lock.values():
        source, copy = root / charts_dir / entry.archive, target / charts_dir / entry.archive
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copy2(source, copy)
            entries.append(entry)
        else:
            copy.write_bytes(f"stand-in for {entry.archive}, which this checkout lacks\n".encode())
            entries.append(replace(entry, sha256=sha256_file(copy)))
            missing.append(f"{entry.name} {entry.version}")
    if missing:
        write_lock(target / charts_dir, entries)
    return Scratch(locked={e.name: e.sha256 for e in lock.values()}, missing=missing, archives={e.archive for e in lock.values()})


def _stack_config(root: Path, stack: str) -> dict[str, Any]:
    path = root / file_name(stack)
    return parse_stack_file(path.read_text(), stack, str(path)).config if path.is_file() else {}


def _charts_dir(root: Path, stack: str) -> str:
    """The charts folder a stack file (or a stack it inherits from) names; `charts` by default."""
    value = inherited(stack_chain(root, stack)).get("chartsDir")
    return value if isinstance(value, str) and value else "charts"


def _tracked_files(root: Path, commit: str | None) -> dict[str, bytes]:
    """Tracked files under the shared data folders, at a commit (or in the working tree when None)."""
    if commit:
        names = _git(root, "ls-tree", "-r", "--name-only", commit, "--", *DATA_PATHS).stdout.split("\n")
        return {n: _git(root, "show", f"{commit}:./{n}", text=False).stdout for n in names if n}
    names = _git(root, "ls-files", "--", *DATA_PATHS).stdout.split("\n")
    return {n: (root / n).read_bytes() for n in names if n and (root / n).is_file()}


def restore(root: Path, history: History, number: int, apply: bool) -> int:
    """Roll the stack's configuration back to what update N deployed (dry run unless apply).

    Takes Pulumi.<stack>.yaml, catalog/, values/ and charts/ from the commit
    update N recorded, checks in a scratch folder that they resolve to exactly
    what update N deployed (releases, chart versions and digests, values,
    secrets), and only then, with apply, writes them into the working tree
    with `git restore`. Refuses, changing nothing, when the commit does not
    reproduce update N or the working tree holds uncommitted changes there.
    """
    update = history.get(number)
    stack = history.stack
    print(history.guard(record_text(update)))
    if update.result != "succeeded":
        print(f"note: update {number} {update.result}; its checkpoint holds what was deployed when it stopped")
    plan = _restore_plan(root, stack, update)
    print(f"update {number} ran at commit {plan.commit}{' with uncommitted changes: the check below decides whether the commit reproduces it' if update.dirty else ''}")
    print(f"restore takes from it: {' '.join(plan.paths)}")
    with tempfile.TemporaryDirectory(prefix="astrago-restore-") as folder:
        scratch = _scratch_tree(root, plan, stack, Path(folder))
        problems = compare_tree(Path(folder), stack, update, scratch.locked)
    if problems:
        print(f"commit {plan.commit[:12]} does not reproduce update {number}; nothing was changed:", file=sys.stderr)
        print("\n".join(f"- {p}" for p in problems), file=sys.stderr)
        print(f"revert by hand from the record above, then check with `make audit-verify STACK={stack} VERSION={number}`", file=sys.stderr)
        return 1
    print(f"check: commit {plan.commit[:12]} resolves to exactly what update {number} deployed (releases, chart versions and digests, values, secrets)")
    if scratch.missing:
        print(f"chart archives this checkout lacks: {', '.join(scratch.missing)}; `make charts-sync` fetches them after the restore")
    then, now = _tracked_files(root, plan.commit), _tracked_files(root, None)
    shared = sorted(n for n in set(then) | set(now) if then.get(n) != now.get(n))
    if shared:
        others = sorted(p.name for p in root.glob("Pulumi.*.yaml") if p.name not in {f"Pulumi.{stack}.yaml", "Pulumi.yaml"})
        print(f"warning: the restore changes files every stack reads ({', '.join(shared)}); the next `make up` of {', '.join(others) or 'another stack'} would deploy them too")
    if not apply:
        print(f"dry run: nothing changed. Apply with `make audit-restore STACK={stack} VERSION={number} APPLY=1`")
        return 0
    charts_dir = _charts_dir(root, stack)
    archive_dir = root / charts_dir / "external"
    archives = f"{charts_dir.rstrip('/')}/external/"
    status = [line for line in _git(root, "status", "--porcelain", "--untracked-files=all", "--", *plan.paths).stdout.splitlines()
              if line and not line[3:].startswith(archives)]
    if status:
        raise InputError("uncommitted changes where the restore writes; commit or stash them first, nothing was changed:\n" + "\n".join(status))
    for parent in plan.parents:
        if (root / parent).is_file() and _git(root, "show", f"{plan.commit}:./{parent}", text=False).stdout != (root / parent).read_bytes():
            raise InputError(f"{parent} changed since update {number}; restoring it would roll back that stack too. Nothing was changed: revert Pulumi.{stack}.yaml by hand from the record above")
    _git(root, "restore", f"--source={plan.commit}", "--worktree", "--", *plan.paths)
    # Archives of versions the restored lock does not name would fail the chart check of `make up`;
    # they are downloads, fetched again by `make charts-sync` whenever they are declared.
    stale = sorted(p for p in archive_dir.glob("*.tgz") if f"external/{p.name}" not in scratch.archives) if not Path(charts_dir).is_absolute() else []
    for path in stale:
        path.unlink()
    print(f"restored {' '.join(plan.paths)} from {plan.commit[:12]}" + (f"; removed archives the restored lock does not name: {', '.join(p.name for p in stale)}" if stale else ""))
    if scratch.missing:
        print(f"next: `make charts-sync` (fetches {', '.join(scratch.missing)}), `make audit-verify STACK={stack} VERSION={number}` (checks the fetched archives are those update {number} deployed), "
              f"review `git diff`, commit, `make up STACK={stack}`")
        return 0
    problems = compare_tree(root, stack, update)
    if problems:
        print(f"the working tree still differs from update {number}:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"this checkout now reproduces update {number}.")
    print(f"next: review `git diff`, commit (\"Roll back {stack} to update {number}\"), then `make preview STACK={stack}` and `make up STACK={stack}`")
    return 0


def verify(root: Path, history: History, number: int) -> int:
    """Exit 0 when this checkout resolves to exactly what update N deployed."""
    update = history.get(number)
    if update.releases is None:
        raise InputError(f"update {number}: the backend kept no checkpoint; nothing to compare with")
    problems = compare_tree(root, history.stack, update)
    if problems:
        print(f"this checkout does not reproduce update {number} of {history.stack}:\n" + "\n".join(f"- {p}" for p in problems))
        return 1
    print(f"this checkout reproduces update {number} of {history.stack}: {len(update.releases)} releases, chart versions and digests, values and secrets")
    return 0


# --- command line -----------------------------------------------------------

COMMANDS = ("report", "diff", "restore", "verify")


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    command = args_in.pop(0) if args_in and args_in[0] in COMMANDS else "report"
    parser = argparse.ArgumentParser(prog=f"python -m commands.audit {command}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--backend", help="file:// URL of the state backend (default: PULUMI_BACKEND_URL, else .state/backend)")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root: stack files, catalog, git checkout (default: this project)")
    if command == "report":
        parser.add_argument("--out-dir", type=Path, default=ROOT / ".state" / "audit", help="where audit-<stack>.md/.json/.html go")
    if command == "diff":
        parser.add_argument("--from", dest="old", type=int, help="update number (default: the one before --to)")
        parser.add_argument("--to", dest="new", type=int, help="update number (default: the latest)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    if command in ("restore", "verify"):
        parser.add_argument("--version", type=int, required=True, help="update number (see the report)")
    if command == "restore":
        parser.add_argument("--apply", action="store_true", help="write the files (default: check and show only)")
    args = parser.parse_args(args_in)
    root: Path = args.root.resolve()
    try:
        history = load_history(backend_path(args.backend), project_name(root), args.stack)
        if command == "report":
            written = write_report(history, args.out_dir)
            summary = report_markdown(history).split("\n## ", 1)[0]
            print(history.guard(summary), end="")
            print("\nwrote " + ", ".join(str(p) for p in written))
            return 0
        if command == "diff":
            new = args.new or len(history.updates)
            old = args.old or new - 1
            if old < 1:
                raise InputError(f"update {new} is the first of stack {history.stack}; nothing before it to compare with (give --from)")
            diff = diff_updates(history, history.get(old), history.get(new), catalog_secrets(root))
            print(history.guard(diff_json(history, diff) if args.json else diff_text(history, diff)), end="")
            return 0 if diff.empty else 1
        if command == "restore":
            return restore(root, history, args.version, args.apply)
        return verify(root, history, args.version)
    except InputError as error:
        print(f"error: stack {args.stack}:\n{error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    entry_point(main, "audit")
