"""git, as the rollback uses it: read commits and restore paths from them, bounded.

git is the machine's own (the checkout is a git clone): it is not part of the pinned toolchain.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from cli.process import ToolError, run

TIMEOUT_S = 60.0


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """git in root; ToolError (with git's message) when it fails and check is set."""
    return run(["git", *args], TIMEOUT_S, cwd=root, check=check)


def git_bytes(root: Path, *args: str) -> bytes:
    """git's output as bytes (file contents, archives); ToolError when it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(f"`git {' '.join(args)}` did not finish within {TIMEOUT_S:.0f} s") from None
    except OSError as error:
        raise ToolError(f"git cannot run: {error}") from None
    if done.returncode != 0:
        raise ToolError(f"`git {' '.join(args)}` failed (exit {done.returncode}): {done.stderr.decode(errors='replace').strip()[-600:]}")
    return done.stdout
