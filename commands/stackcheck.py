"""The pre-flight of every make target on a stack: its files are checked before pulumi reads them.

    python -m commands.stackcheck --stack dev [--in-backend]

Refuses, changing nothing, a stack without a `Pulumi.<stack>.yaml` (naming
the known stacks and the closest name), a stack file or one it inherits from
that is not YAML or breaks the schema (file and line), settings the catalog
refuses (unknown releases, endpoint keys, credentials in values), and a chart
declaration or lock of the stack's charts folder that is not YAML or breaks
its schema.
With --in-backend (the read-only targets: preview, refresh, destroy, policy,
drift, recover) it also refuses a stack a file backend does not hold yet,
instead of letting a preview create it: `make stack` or `make up` creates
stacks. Prints nothing when all is well.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from commands import ROOT
from model.catalog import load_catalog
from model.charts import DECLARED_FILE, load_declared, load_lock
from model.errors import InputError, entry_point
from model.stackfile import PROJECT, file_name, stack_settings

BACKEND_ENV = "PULUMI_BACKEND_URL"


def backend_holds(stack: str, url: str, project: str = PROJECT) -> bool | None:
    """Whether a file backend holds the stack; None for other backends (pulumi itself answers there)."""
    if not url.startswith("file://"):
        return None
    folder = Path(os.path.expanduser(url.removeprefix("file://"))) / ".pulumi" / "stacks"
    names = (folder / project / f"{stack}.json", folder / f"{stack}.json")
    return any(p.exists() or p.with_name(p.name + ".gz").exists() for p in names)


def check(stack: str, root: Path = ROOT, in_backend: bool = False, environ: dict[str, str] | None = None) -> None:
    """Raise InputError when the stack's files (or, with in_backend, its state) are not ready for pulumi."""
    settings = stack_settings(root, stack, load_catalog(root / "catalog" / "releases.yaml"))
    charts = root / settings.charts_dir
    if (charts / DECLARED_FILE).is_file():
        # Read (syntax and schema), not verified: archives are checked by the program, for the charts the stack needs.
        load_declared(charts)
        load_lock(charts)
    if in_backend:
        url = (environ if environ is not None else dict(os.environ)).get(BACKEND_ENV, "")
        if backend_holds(stack, url) is False:
            raise InputError(
                f"stack {stack!r} is not in the backend {url} yet; nothing was created. {file_name(stack)} is there: "
                f"create the stack with `make stack STACK={stack}` (`make up STACK={stack}` creates it too), then run this again"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--in-backend", action="store_true", help="also refuse a stack the (file) backend does not hold")
    args = parser.parse_args(argv)
    check(args.stack, ROOT, args.in_backend)
    return 0


if __name__ == "__main__":
    entry_point(main, f"stack {os.environ.get('STACK', '')}".strip())
