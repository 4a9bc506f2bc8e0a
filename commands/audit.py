"""Audit trail of a stack from its state backend: report, diff of two updates, rollback.

  python -m commands.audit --stack dev [--out-dir DIR]              report: Markdown, JSON and HTML
  python -m commands.audit diff --stack dev --from 3 --to 5          what changed between two updates
  python -m commands.audit restore --stack dev --version 3 [--apply] roll the stack's data back to update 3
  python -m commands.audit verify --stack dev --version 3            does this checkout reproduce update 3?

Reads any self-hosted backend (file://, postgres://, an object store): the
updates from `pulumi stack history`, the state each one left from the
backend's own copy of it (cli/stack_history.py). DIY backends store no update
number (`pulumi stack history --json` shows version 0 for every update), so
updates are numbered 1..n in the order they ran, oldest first, as Pulumi Cloud
numbers them. Nothing here needs the passphrase, the engine or a cluster, and
nothing decrypts: a secret in the state is a ciphertext, compared but never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audit.diff import catalog_secrets, diff_json, diff_text, diff_updates
from audit.page import report_html
from audit.report import report_json, report_markdown, write_texts
from audit.restore import restore
from audit.verify import verify
from cli.process import ToolError
from cli.stack_history import backend_url, load_history
from commands import ROOT
from model.errors import InputError, entry_point
from model.history import History

COMMANDS = ("report", "diff", "restore", "verify")


def write_report(history: History, out_dir: Path) -> list[Path]:
    """Write audit-<stack>.md/.json/.html; every text is checked to hold no ciphertext first."""
    return write_texts(history, out_dir, {
        f"audit-{history.stack}.md": report_markdown(history),
        f"audit-{history.stack}.json": report_json(history),
        f"audit-{history.stack}.html": report_html(history),
    })


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    command = args_in.pop(0) if args_in and args_in[0] in COMMANDS else "report"
    parser = argparse.ArgumentParser(prog=f"python -m commands.audit {command}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--backend", help="URL of the state backend (default: PULUMI_BACKEND_URL, else .state/backend)")
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
        history = load_history(backend_url(args.backend), root, args.stack)
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
    except ToolError as error:
        print(f"error: stack {args.stack}: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    entry_point(main, "audit")
