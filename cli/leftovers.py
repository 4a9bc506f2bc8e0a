"""Processes a killed `pulumi` left running: found precisely, waited for, then stopped.

When the CLI alone is killed (`kill -9`, an OOM kill), its language host,
the program and its provider plugins live on, re-parented, for as long as
the operation they were doing lasts (a Helm wait: up to the release's
timeout). They hold the release pending and would undo a repair when they
end. They are this project's only when every one of these holds:

- the program is a Pulumi plugin (`pulumi-resource-*`, `pulumi-language-*`,
  `pulumi-analyzer-*`) or the Python program run by the language host
  (`pulumi-language-python-exec`), or a process below one of those;
- it runs in this project's folder (cwd) with this state backend
  (PULUMI_BACKEND_URL in its environment);
- no `pulumi` CLI is among its ancestors (that would be a running update,
  which the stack's lock reports);
- the processes of one update share the engine address the CLI gave them
  (`<program> 127.0.0.1:PORT`, `--engine 127.0.0.1:PORT`): a group whose
  program names another stack (`--stack`) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PLUGIN_PREFIXES = ("pulumi-resource-", "pulumi-language-", "pulumi-analyzer-")
EXEC_SHIM = "pulumi-language-python-exec"
ADDRESS = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\]):\d+$")
PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    argv: tuple[str, ...]
    cwd: str
    environ: dict[str, str]

    @property
    def program(self) -> str:
        """The file name of the program (for a script run by an interpreter: the script's)."""
        names = [Path(arg).name for arg in self.argv[:3]]
        if EXEC_SHIM in names:
            return EXEC_SHIM
        return names[0] if names else ""

    @property
    def engine(self) -> str:
        """The engine address the CLI started this process with ('' when it has none)."""
        for i, arg in enumerate(self.argv):
            if arg == "--engine" and i + 1 < len(self.argv):
                return self.argv[i + 1]
        return next((arg for arg in reversed(self.argv) if ADDRESS.match(arg)), "")

    @property
    def stack(self) -> str:
        """The stack the program runs for (the exec shim's --stack), '' for others."""
        for i, arg in enumerate(self.argv):
            if arg == "--stack" and i + 1 < len(self.argv):
                return self.argv[i + 1]
        return ""

    def describe(self) -> str:
        return f"{self.pid} {self.program}"


def read(pid: int, proc: Path = PROC) -> Process | None:
    """A process's facts, None when it is gone or not readable (another user's)."""
    entry = proc / str(pid)
    try:
        ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        argv = tuple(a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a)
        cwd = os.readlink(entry / "cwd")
        raw = (entry / "environ").read_bytes().decode(errors="replace").split("\0")
    except (OSError, ValueError, IndexError):
        return None
    environ = dict(item.split("=", 1) for item in raw if "=" in item)
    return Process(pid=pid, ppid=ppid, argv=argv, cwd=cwd, environ=environ)


def processes(proc: Path = PROC) -> dict[int, Process]:
    found = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            process = read(int(entry.name), proc)
            if process is not None:
                found[process.pid] = process
    return found


def alive(pid: int, proc: Path = PROC) -> bool:
    """Running (a zombie, dead but not reaped, does nothing any more)."""
    try:
        return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _normal(backend: str) -> str:
    return backend.split("?", 1)[0].rstrip("/")


def find_leftovers(root: Path, backend: str, stack: str, table: dict[int, Process] | None = None) -> tuple[list[Process], list[Process]]:
    """(this stack's leftover processes, leftovers of other stacks of this project), each sorted by pid."""
    table = processes() if table is None else table

    def has_live_cli(process: Process) -> bool:
        seen: set[int] = set()
        current = table.get(process.ppid)
        while current is not None and current.pid not in seen and current.pid > 1:
            if current.program == "pulumi":
                return True
            seen.add(current.pid)
            current = table.get(current.ppid)
        return False

    def ours(process: Process) -> bool:
        if not (process.program.startswith(PLUGIN_PREFIXES) or process.program == EXEC_SHIM):
            return False
        try:
            same_dir = Path(process.cwd).resolve() == root.resolve()
        except OSError:
            return False
        theirs = _normal(process.environ.get("PULUMI_BACKEND_URL", ""))
        return same_dir and theirs == _normal(backend) and not has_live_cli(process)

    roots = [p for p in table.values() if ours(p)]
    groups: dict[str, list[Process]] = {}
    for process in roots:
        groups.setdefault(process.engine or f"pid {process.pid}", []).append(process)
    mine: list[Process] = []
    others: list[Process] = []
    for members in groups.values():
        stacks = {p.stack for p in members if p.stack}
        (mine if not stacks or stacks == {stack} else others).extend(members)
    return _with_descendants(mine, table), _with_descendants(others, table)


def _with_descendants(chosen: Iterable[Process], table: dict[int, Process]) -> list[Process]:
    children: dict[int, list[Process]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process)
    found: dict[int, Process] = {}
    todo = list(chosen)
    while todo:
        current = todo.pop()
        if current.pid not in found:
            found[current.pid] = current
            todo.extend(children.get(current.pid, []))
    return sorted(found.values(), key=lambda p: p.pid)


def wait_then_stop(pids: list[int], wait_s: float, grace_s: float = 10.0, is_alive: Callable[[int], bool] = alive,
                   sleep: Callable[[float], None] = time.sleep) -> tuple[list[int], list[int]]:
    """Wait up to wait_s for the processes to end by themselves, then SIGTERM, then SIGKILL after grace_s.

    Returns (pids that ended by themselves, pids that were stopped).
    """
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(is_alive(p) for p in pids):
        sleep(0.2)
    stopped = [p for p in pids if is_alive(p)]
    ended = [p for p in pids if p not in stopped]
    for sig, pause in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in stopped:
            if is_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        until = time.monotonic() + pause
        while time.monotonic() < until and any(is_alive(p) for p in stopped):
            sleep(0.1)
    return ended, stopped
