"""The audit report of one stack as Markdown and JSON (the HTML page is audit/page.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.history import ENV_PREFIXES, History, Update, changes_text, iso, ran_by, when

NUMBERING = "1 = oldest update; DIY backends store no numbers (`pulumi stack history` shows version 0)"


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
        "source": update.source,
    }


def report_json(history: History) -> str:
    data = {
        "stack": history.stack,
        "project": history.project,
        "backend": history.backend,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numbering": NUMBERING,
        "notes": history.notes,
        "updates": [update_json(u) for u in history.updates],
    }
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def md(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return text.replace("|", "\\|").replace("\n", " ").strip()


def report_markdown(history: History) -> str:
    lines = [
        f"# Audit of stack `{history.stack}` (project {history.project})",
        "",
        f"State backend `{history.backend}`; {len(history.updates)} updates, numbered from 1 (oldest). "
        "Secrets are never shown: the state holds them encrypted. Times are UTC.",
        *[f"\nNote: {md(n)}" for n in history.notes],
        "",
        "| # | kind | result | start | end | took | ran by | commit | message | resource changes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for u in history.updates:
        commit = f"`{u.commit[:12]}`{' (dirty)' if u.dirty else ''}" if u.commit else "-"
        took = "-" if u.duration_s is None else f"{u.duration_s} s"
        lines.append(f"| {u.number} | {u.kind} | {u.result} | {when(u.start)} | {when(u.end)} | {took} | {md(ran_by(u))} | {commit} | {md(u.message)} | {changes_text(u.resource_changes)} |")
    for u in history.updates:
        env = u.environment
        lines += ["", f"## Update {u.number}: {u.kind}, {u.result}", ""]
        lines.append(f"- start {when(u.start)}, end {when(u.end)}" + ("" if u.duration_s is None else f" ({u.duration_s} s)"))
        lines.append(f"- ran by: {md(ran_by(u))}")
        if u.commit:
            lines.append(f"- commit `{u.commit}` on {env.get('git.headName', '?')}" + (" with uncommitted changes" if u.dirty else ""))
        lines.append(f"- message: {md(u.message) or '-'}")
        lines.append(f"- resource changes: {changes_text(u.resource_changes)}")
        ci = {k: v for k, v in sorted(env.items()) if k.startswith(("ci.", "vcs.", "exec."))}
        if ci:
            lines.append("- environment: " + ", ".join(f"{k}={md(v)}" for k, v in ci.items()))
        if u.releases is None:
            lines += ["", "The state after this update cannot be read from this backend."]
        elif not u.releases:
            lines += ["", "No release deployed after this update."]
        else:
            lines += ["", "| release | namespace | chart | version | digest (sha256) | status | revision |", "|---|---|---|---|---|---|---|"]
            for r in u.releases.values():
                lines.append(f"| {r.name} | {r.namespace} | `{r.chart}` | {r.version} | `{r.digest}` | {r.status} | {r.revision if r.revision is not None else '-'} |")
    return "\n".join(lines) + "\n"


def write_texts(history: History, out_dir: Path, texts: dict[str, str]) -> list[Path]:
    """Write files after checking every text holds no ciphertext; the paths written."""
    for text in texts.values():
        history.guard(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    return written
