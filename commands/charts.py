"""Chart supply chain: `verify` checks archives, lock and declaration agree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.charts import load_declared, verify_lock
from model.errors import InputError

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check every archive against the lock")
    verify.add_argument("--charts-dir", default=str(ROOT / "charts"))
    args = parser.parse_args(argv)
    charts = Path(args.charts_dir)
    try:
        lock = verify_lock(charts)
    except InputError as error:
        print(f"charts-verify: {charts}:\n{error}", file=sys.stderr)
        return 1
    print(f"charts-verify: {len(lock)} of {len(load_declared(charts))} declared charts verified in {charts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
