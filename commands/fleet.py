"""Which site runs what: every stack of the state backend, its last update, chart versions and digests, image tags.

  python -m commands.fleet [--backend URL] [--out-dir DIR] [--json]

Reads the state backend alone (the Pulumi CLI: `stack ls`, `stack history`,
`stack export`): no passphrase, no cluster, no stack file. Writes
fleet.md, fleet.json and fleet.html and prints the Markdown (or, with --json, the JSON).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audit.fleet import fleet, fleet_html, fleet_json, fleet_markdown
from cli.process import ToolError
from cli.stack_history import backend_url, load_fleet
from commands import ROOT
from model.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", help="URL of the state backend (default: PULUMI_BACKEND_URL, else .state/backend)")
    parser.add_argument("--root", type=Path, default=ROOT, help="project folder (its Pulumi.yaml names the project)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / ".state" / "audit", help="where fleet.md/.json/.html go")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")
    args = parser.parse_args(argv)
    try:
        backend, stacks, ciphertexts = load_fleet(backend_url(args.backend), args.root.resolve())
        if not stacks:
            raise InputError(f"{backend}: no stack of this project; `make up STACK=<stack>` with this PULUMI_BACKEND_URL creates one")
        view = fleet(backend, stacks)
        texts = {"fleet.md": fleet_markdown(view), "fleet.json": fleet_json(view), "fleet.html": fleet_html(view)}
        for text in texts.values():
            if any(c and c in text for c in ciphertexts):
                raise RuntimeError("refusing to print: the output would contain a ciphertext from the state")
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (args.out_dir / name).write_text(text)
        print(texts["fleet.json" if args.json else "fleet.md"], end="")
        print(f"wrote {', '.join(str(args.out_dir / n) for n in texts)}", file=sys.stderr)
        return 0
    except InputError as error:
        print(f"error: fleet:\n{error}", file=sys.stderr)
        return 2
    except ToolError as error:
        print(f"error: fleet: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
