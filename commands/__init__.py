"""Command-line tools behind the Makefile targets (run as `python -m commands.<name>`).

What the commands share lives here, so no command imports another: the
project root and the stack resolved for the commands that talk to a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.deployment import Deployment

ROOT = Path(__file__).resolve().parent.parent


def resolve_for_cluster(stack: str, root: Path, charts_dir: str | None) -> Deployment | int:
    """A stack resolved for commands that talk to its cluster, or the exit code 2 after saying why.

    Shared by diff and drift: the stack must resolve and a kubeconfig must be usable.
    """
    import sys

    from cli.kubectl import kubeconfig_problem
    from model.deployment import resolve_stack
    from model.errors import InputError

    try:
        deployment = resolve_stack(stack, root, charts_dir)
    except InputError as error:
        print(f"error: stack {stack}:\n{error}", file=sys.stderr)
        return 2
    problem = kubeconfig_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return deployment
