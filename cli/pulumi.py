"""The pinned Pulumi CLI as recovery and diagnosis need it: its environment, its backend, a stack's locks and state."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cli.process import ROOT, run, tool
from model.stackfile import PROJECT


@dataclass(frozen=True)
class Lock:
    """A lock file of the stack in a file backend."""

    path: Path
    pid: int
    host: str
    user: str
    since: str

    def taken(self) -> float | None:
        """When the lock was taken, seconds since the epoch (None when its timestamp cannot be read)."""
        match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", self.since)
        if not match:
            return None
        fraction = (match[2] or ".0")[:7]
        zone = "+00:00" if match[3] in (None, "Z") else match[3]
        return datetime.fromisoformat(f"{match[1]}{fraction}{zone}").timestamp()

    def holder_alive(self) -> bool | None:
        """True/False when the holder's host is this machine; None when it cannot be told."""
        if self.host != socket.gethostname():
            return None
        return _pulumi_process(self.pid)


def _pulumi_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return True
    return "pulumi" in Path(command).name


def pulumi_env(root: Path) -> dict[str, str]:
    """The CLI's environment: the project's plugins and no downloads unless the caller says otherwise (as `make` does)."""
    env = dict(os.environ)
    env.setdefault("PULUMI_HOME", str(root / ".tools" / "pulumi-home") if (root / ".tools" / "pulumi-home").is_dir() else str(ROOT / ".tools" / "pulumi-home"))
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "1")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    return env


def backend_url(root: Path, env: dict[str, str], timeout_s: float) -> str:
    """The state backend the CLI uses here (`pulumi whoami`)."""
    out = run([tool("pulumi"), "whoami", "--json", "--non-interactive"], timeout_s, cwd=root, env=env).stdout
    return str(json.loads(out).get("url", ""))


def stack_locks(backend: str, stack: str) -> list[Lock] | None:
    """The stack's lock files in a file backend (None for other backends: their locks cannot be read here)."""
    if not backend.startswith("file://"):
        return None
    folder = Path(backend.removeprefix("file://").split("?", 1)[0]) / ".pulumi" / "locks"
    candidates = list(folder.glob(f"*/{PROJECT}/{stack}/*.json")) + list(folder.glob(f"{stack}/*.json"))
    locks = []
    for path in candidates:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        locks.append(Lock(path=path, pid=int(data.get("pid") or 0), host=str(data.get("hostname", "?")),
                          user=str(data.get("username", "?")), since=str(data.get("timestamp", "?"))))
    return locks


def pending_operations(root: Path, env: dict[str, str], stack: str, timeout_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The exported state (secrets encrypted) and its pending operations: the CLI has no other way to list them."""
    out = run([tool("pulumi"), "stack", "export", "--stack", stack, "--non-interactive"], timeout_s, cwd=root, env=env).stdout
    state = json.loads(out)
    return state, list((state.get("deployment") or {}).get("pending_operations") or [])
