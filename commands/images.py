"""List every container image a stack runs: `make images STACK=<stack>` writes images/<stack>.lock.yaml (offline/image_list.py does the work).

With `astrago-deploy:offline.registry` set, the charts are rendered without
it, so the lock holds the source references the bundle fetches; the
post-render moves each image to the registry and pins the digest `make bundle`
recorded here. Digests, sizes and platforms already in the lock are kept for
unchanged references. Same charts and values, same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.process import ToolError
from commands import ROOT
from model.errors import InputError, entry_point
from model.images_lock import load_images_lock, lock_path, write_images_lock
from offline.image_list import HELM_TIMEOUT_S, collect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.images", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--charts-dir", help="charts folder to resolve external charts from (default: the stack's chartsDir)")
    parser.add_argument("--out", help="where to write the lock (default: images/<stack>.lock.yaml)")
    parser.add_argument("--timeout", type=float, default=HELM_TIMEOUT_S, help="seconds one `helm template` may take")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else lock_path(ROOT, args.stack)
    started = time.monotonic()
    try:
        lock = collect(args.stack, charts_dir=args.charts_dir, timeout_s=args.timeout)
    except (InputError, ToolError) as error:
        print(f"images: stack {args.stack}:\n{error}", file=sys.stderr)
        return 2
    previous = None
    if out.is_file():
        try:
            previous = load_images_lock(out)
        except InputError as error:
            print(f"note: the previous lock is not kept ({error}); digests are recorded again by `make bundle`")
    lock = lock.keep_fetched(previous)
    write_images_lock(lock, out)
    for line in lock.warnings():
        print(line)
    releases = {r for i in lock.images for r in i.releases}
    pinned = sum(1 for i in lock.images if i.digest)
    where = f"; site registry {lock.registry}" if lock.registry else "; no astrago-deploy:offline.registry set"
    print(f"images: {len(lock.images)} images of {len(releases)} releases ({pinned} with a digest){where}; {out} ({time.monotonic() - started:.2f}s)")
    return 0


if __name__ == "__main__":
    entry_point(main, "images")
