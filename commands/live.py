"""What the commands that talk to a stack's cluster share: the kubeconfig check and the stack resolved for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def kubeconfig_problem() -> str | None:
    """Why no cluster can be reached without even asking (no KUBECONFIG and no ~/.kube/config), else None."""
    configured = os.environ.get("KUBECONFIG")
    if configured:
        missing = [p for p in configured.split(os.pathsep) if p and not Path(p).is_file()]
        return f"KUBECONFIG names {missing}, which do not exist; `make cluster` writes .state/kubeconfig for the local stack" if missing else None
    if (Path.home() / ".kube" / "config").is_file():
        return None
    return "no kubeconfig: set KUBECONFIG (the make targets set it to .state/kubeconfig for the local stack)"


def resolve_for_cluster(stack: str, root: Path, charts_dir: str | None) -> Any:
    """A stack resolved for commands that talk to its cluster, or the exit code 2 after saying why.

    Shared by diff and drift: the stack must resolve and a kubeconfig must be usable.
    """
    import sys

    from commands.values import resolve_stack
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
