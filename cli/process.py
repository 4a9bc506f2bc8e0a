"""Bounded calls of the project's own tools.

Every call has a timeout; a tool that is missing, fails or hangs raises
ToolError with a message that names the command (never its output of values
or secrets).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"


class ToolError(RuntimeError):
    """A tool is missing, failed or did not answer in time; the message names the command and the fix."""


def tool(name: str) -> str:
    """The project's pinned build of a tool (.tools/bin); ToolError with the `make setup` hint when it is missing.

    Never one from PATH: its version would be whatever the machine happens to have.
    """
    local = TOOLS / name
    if os.access(local, os.X_OK):
        return str(local)
    raise ToolError(f"{name} is not installed in {TOOLS}: run `make setup`")


def run(command: list[str], timeout_s: float, *, stdin: str | None = None, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command with a deadline; on expiry interrupt it (SIGINT), then kill it.

    SIGINT first because pulumi then stops its plugins and releases the stack
    lock; a plain kill would leave both behind.
    """
    process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                               env=dict(env) if env is not None else None)
    try:
        out, err = process.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        raise ToolError(f"`{_short(command)}` did not finish within {timeout_s:.0f} s and was stopped") from None
    result = subprocess.CompletedProcess(command, process.returncode, out, err)
    if check and result.returncode != 0:
        raise ToolError(f"`{_short(command)}` failed (exit {result.returncode}): {err.strip()[-600:]}")
    return result


def _short(command: list[str]) -> str:
    words = [Path(command[0]).name, *command[1:]]
    text = " ".join(words)
    return text if len(text) < 160 else text[:157] + "..."
