"""The pinned kubectl: one function every caller uses."""

from __future__ import annotations

import subprocess

from cli.process import run, tool


def kubectl(args: list[str], timeout_s: float, *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`kubectl <args>` with the pinned binary, bounded: the server is asked to answer within timeout_s too.

    Raises cli.process.ToolError when kubectl is missing, fails (check=True) or hangs.
    """
    command = [tool("kubectl"), *args, f"--request-timeout={max(1, int(timeout_s))}s"]
    return run(command, timeout_s + 5, stdin=stdin, check=check)
