"""The local cluster's processes and ports: which run, which are its own, stopping them (Python standard library only)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

from layout import HOST, PORT_OFFSETS, Cluster, ClusterError, Deadline


def proc_alive(pid: int) -> bool:
    """True if the process exists and is not a finished zombie.

    Killed components are reparented to PID 1, which may reap them late; a
    zombie whose threads have all exited holds no ports or files, so it
    counts as gone. A Go program's main thread turns zombie before its other
    threads finish exiting (and close the sockets), so those still count.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may hold spaces.
    state = stat.rpartition(")")[2].split()[0]
    if state not in ("Z", "X"):
        return True
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def proc_argv0(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw else None


def owned_by(c: Cluster, pid: int) -> bool:
    """True if pid is a live process started from this cluster's bin dir.

    kwokctl starts each component as <cluster dir>/bin/<component>; checking
    that guards against a stale pid file whose pid now belongs to someone else.
    """
    argv0 = proc_argv0(pid)
    return argv0 is not None and argv0.startswith(str(c.bin_dir) + "/") and proc_alive(pid)


def recorded_pids(c: Cluster) -> dict[str, int]:
    """Component -> pid from kwokctl's pid files (whatever their liveness)."""
    pids: dict[str, int] = {}
    if not c.pid_dir.is_dir():
        return pids
    for f in sorted(c.pid_dir.glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            pids[f.stem] = int(f.read_text().strip())
    return pids


def running_components(c: Cluster) -> dict[str, int]:
    """Component -> pid for the recorded processes that are alive and ours."""
    return {comp: pid for comp, pid in recorded_pids(c).items() if owned_by(c, pid)}


def unrecorded_processes(c: Cluster) -> list[int]:
    """Live processes started from this cluster's bin dir that no pid file names.

    Matches the exact, cluster-private path <cluster dir>/bin/ (not a program
    name), so it can only find this cluster's processes, e.g. after a crash
    between fork and writing the pid file.
    """
    known = set(recorded_pids(c).values())
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if pid not in known and pid != os.getpid() and owned_by(c, pid):
                found.append(pid)
    return found


def port_free(port: int) -> bool:
    """True if a server could listen on 127.0.0.1:port now.

    SO_REUSEADDR as the Go servers use it, so TIME_WAIT leftovers of a
    previous run do not count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str | None:
    """'pid N (comm)' of the process listening on port, if /proc tells."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        comm = (entry / "comm").read_text().strip()
                        return f"pid {entry.name} ({comm})"
    return "another process"


def check_ports(c: Cluster, settle_s: float) -> None:
    """Fail naming each port of the cluster that something else holds.

    Waits up to settle_s for ports to free up, as right after a restart's
    teardown the kernel may still be closing the old servers' sockets.
    """
    deadline = Deadline(settle_s)
    while any(not port_free(c.port(w)) for w in PORT_OFFSETS) and not deadline.expired():
        time.sleep(0.1)
    taken = []
    for what in PORT_OFFSETS:
        port = c.port(what)
        if not port_free(port):
            holder = port_holder(port)
            taken.append(f"{HOST}:{port} ({what})" + (f" held by {holder}" if holder else ""))
    if taken:
        raise ClusterError(
            "port already in use: " + "; ".join(taken)
            + ". Stop whatever holds it, or start the cluster on other ports with --port-base."
        )


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"    (no log at {path})"
    return "\n".join("    " + line for line in text[-lines:])


def terminate(pids: list[int], c: Cluster, grace_s: float = 10.0) -> list[int]:
    """Stop the given pids of this cluster; return those still alive after SIGKILL.

    pids were checked to be ours when collected. A signal is only sent while
    a pid still runs from this cluster's bin dir (never to a reused pid);
    waiting uses plain liveness, so a process that is mid-exit (zombie main
    thread, other threads still closing sockets) is waited for too.
    """
    targets = list(pids)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in targets:
            if owned_by(c, pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            targets = [p for p in targets if proc_alive(p)]
            if not targets:
                return []
            time.sleep(0.05)
    return [p for p in targets if owned_by(c, p)]


# The provisioner runs as `cluster.py volumes ...`; its command line tells it apart from any other process.
SCRIPT = Path(__file__).resolve().parent / "cluster.py"


def volumes_command(c: Cluster) -> list[str]:
    return [sys.executable, str(SCRIPT), "volumes", "--name", c.name, "--workdir", str(c.workdir),
            "--kubeconfig", str(c.kubeconfig), "--tools", str(c.tools), "--port-base", str(c.port_base)]


def volumes_pid(c: Cluster) -> int | None:
    """The provisioner's pid if it runs for this cluster (checked against its command line)."""
    try:
        pid = int(c.volumes_pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    expected = [a.encode() for a in volumes_command(c)[1:]]
    return pid if argv[1:len(expected) + 1] == expected and proc_alive(pid) else None
