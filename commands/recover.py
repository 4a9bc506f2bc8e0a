"""Repair a stack after `pulumi up` was killed mid-update, so the next `make up` runs.

`python -m commands.recover --stack <stack> [--release NAME]` (`make recover`).
An update stopped hard (SIGKILL, a lost machine, a CI job killed, or SIGINT
to every process of it as a container stop sends) can leave three things:

1. a lock file of the stack in a file (DIY) backend: the next `up` says "the
   stack is currently locked". Removed with `pulumi cancel`, which on a DIY
   backend deletes the stack's lock files; only after checking that the pid
   the lock names is no longer running on this machine.
2. pending operations in the state ("interrupted while creating"): `up`
   warns about them on every run and `pulumi refresh` can clear pending
   creates only interactively or by refreshing (and adopting) everything.
   They are removed from the state alone: `pulumi stack export`, drop
   `pending_operations`, `pulumi stack import` (secrets stay encrypted).
3. Helm releases whose latest revision is pending-install, pending-upgrade
   or pending-rollback: Helm refuses any operation on them. Each is rolled
   back to its newest deployed revision (`helm rollback --wait`), or
   uninstalled when it never deployed (a pending-install of revision 1).

Nothing is changed while an update still runs: a live lock holder, or
plugin processes of a killed update that still run (they would go on acting
on Helm releases), stop the command first, with what to do. Running it on a
healthy stack changes nothing. Exit 0 when the stack is ready for `make up`,
2 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.helm import HelmRelease, helm_history, helm_releases
from cli.process import ToolError, run, tool
from commands.live import ROOT, kubeconfig_problem
from model.catalog import load_catalog
from model.errors import InputError, entry_point
from model.pending import PendingCheckError, PendingRelease, find_pending
from model.stackfile import PROJECT

PLUGIN_PREFIXES = ("pulumi-resource-", "pulumi-language-")
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class Lock:
    """A lock file of the stack in a file backend."""

    path: Path
    pid: int
    host: str
    user: str
    since: str

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


def orphaned_plugins(backend: str, root: Path) -> list[int]:
    """Pulumi plugin processes of this project and backend whose CLI is gone.

    A provider left behind by a killed CLI (kill -9 of `pulumi` alone) keeps
    waiting on Helm and, when its timeout ends, uninstalls or rolls back on
    its own: repairing the release under it would be undone.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not _program(int(entry.name)).startswith(PLUGIN_PREFIXES):
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if _program(parent) == "pulumi":
                continue  # its CLI still runs: a live update, which the lock check reports
            environ = dict(item.split("=", 1) for item in (entry / "environ").read_bytes().decode(errors="replace").split("\0") if "=" in item)
            cwd = os.readlink(entry / "cwd")
        except (OSError, ValueError, IndexError):
            continue
        theirs = environ.get("PULUMI_BACKEND_URL", backend).split("?", 1)[0].rstrip("/")
        if theirs == backend.split("?", 1)[0].rstrip("/") and Path(cwd).resolve() == root:
            found.append(int(entry.name))
    return sorted(found)


def _program(pid: int) -> str:
    """The file name of a process's program ('' when it is gone)."""
    try:
        return Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")).name
    except OSError:
        return ""


def pending_operations(root: Path, env: dict[str, str], stack: str, timeout_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The exported state (secrets encrypted) and its pending operations."""
    out = run([tool("pulumi"), "stack", "export", "--stack", stack, "--non-interactive"], timeout_s, cwd=root, env=env).stdout
    state = json.loads(out)
    return state, list((state.get("deployment") or {}).get("pending_operations") or [])


def clear_pending_operations(root: Path, env: dict[str, str], stack: str, state: dict[str, Any], timeout_s: float) -> None:
    """Import the state without its pending operations (a private temporary file; it holds ciphertext only)."""
    state = dict(state)
    state["deployment"] = {k: v for k, v in state["deployment"].items() if k != "pending_operations"}
    with tempfile.TemporaryDirectory(prefix="astrago-recover-") as folder:
        path = Path(folder) / "state.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(state))
        run([tool("pulumi"), "stack", "import", "--stack", stack, "--file", str(path), "--non-interactive"], timeout_s, cwd=root, env=env)


def rollback_target(history: list[tuple[int, str]], pending_revision: int) -> int | None:
    """The revision to roll a pending release back to: the newest deployed before it, else the newest superseded; None: uninstall."""
    earlier = [(rev, status) for rev, status in history if rev < pending_revision]
    for wanted in ("deployed", "superseded"):
        revisions = [rev for rev, status in earlier if status == wanted]
        if revisions:
            return max(revisions)
    return None


def repair_release(pending: PendingRelease, timeout_s: float) -> str:
    """Roll a pending release back or uninstall it; return what was done."""
    helm = tool("helm")
    target = rollback_target(helm_history(pending.namespace, pending.name, timeout_s), pending.revision)
    wait = ["--wait", "--timeout", f"{int(timeout_s)}s"]
    if target is None:
        run([helm, "uninstall", pending.name, "--namespace", pending.namespace, *wait], timeout_s + 30)
        return f"{pending.name} ({pending.namespace}): {pending.status} revision {pending.revision} never deployed: uninstalled"
    run([helm, "rollback", pending.name, str(target), "--namespace", pending.namespace, *wait], timeout_s + 30)
    return f"{pending.name} ({pending.namespace}): {pending.status} revision {pending.revision}: rolled back to revision {target}"


def short_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def release_urns(state: dict[str, Any], releases: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(namespace, name) -> URN of the Helm release resources the state holds."""
    found = {}
    for resource in (state.get("deployment") or {}).get("resources") or []:
        inputs = resource.get("inputs") or {}
        key = (str(inputs.get("namespace", "")), str(inputs.get("name", "")))
        if resource.get("type") == RELEASE_TYPE and key in releases:
            found[key] = resource["urn"]
    return found


def finished_creates(pending_ops: list[dict[str, Any]], installed: dict[tuple[str, str], HelmRelease]) -> list[tuple[str, str]]:
    """(URN, import id) of interrupted Helm release creates that did finish: Helm holds the release, deployed."""
    done = []
    for op in pending_ops:
        resource = op.get("resource") or {}
        inputs = resource.get("inputs") or {}
        key = (str(inputs.get("namespace", "")), str(inputs.get("name", "")))
        if op.get("type") == "creating" and resource.get("type") == RELEASE_TYPE and key in installed and installed[key].status == "deployed":
            done.append((resource["urn"], f"{key[0]}/{key[1]}"))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--release", help="repair only this Helm release (the lock and pending operations are the stack's)")
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder (default: this repository)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each helm/pulumi call may take (default 300)")
    parser.add_argument("--force-unlock", action="store_true",
                        help="remove a lock this command cannot check: held on another machine, or in a backend other than file:// (make sure no update runs)")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    stack = args.stack
    try:
        catalog = load_catalog(root / "catalog" / "releases.yaml")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    releases = [(r.namespace, r.name) for r in catalog.releases if not args.release or r.name == args.release]
    if not releases:
        print(f"error: RELEASE={args.release} is not in catalog/releases.yaml; choose one of {sorted(r.name for r in catalog.releases)}", file=sys.stderr)
        return 2
    problem = kubeconfig_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    env = pulumi_env(root)
    try:
        # 1. Look at everything first; change nothing while an update may still run.
        backend = backend_url(root, env, 60)
        locks = stack_locks(backend, stack)
        orphans = orphaned_plugins(backend, root)
        state, pending_ops = pending_operations(root, env, stack, args.timeout)
        pending = find_pending(releases, timeout_s=min(args.timeout, 60))
        finished = finished_creates(pending_ops, helm_releases([name for _, name in releases], min(args.timeout, 60)))
    except (ToolError, PendingCheckError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if finished:
        # Dropping these would make the next `up` install them again ("cannot re-use a name that is still in use").
        for urn, import_id in finished:
            print(f"error: the interrupted update did create Helm release {import_id} (deployed), but the state does not record it; "
                  f"adopt it into the state with `pulumi refresh --yes --stack {stack} --target '{urn}' "
                  f"--import-pending-creates '{urn}' --import-pending-creates {import_id}`, then run this again", file=sys.stderr)
        return 2
    live = [lock for lock in locks or [] if lock.holder_alive() is True]
    unknown = [lock for lock in locks or [] if lock.holder_alive() is None]
    if live:
        for lock in live:
            print(f"error: stack {stack} is locked by a running update: pid {lock.pid} ({lock.user}@{lock.host}, since {lock.since}); "
                  f"wait for it to end or stop it (Ctrl-C / kill -INT {lock.pid}), then run this again", file=sys.stderr)
        return 2
    if unknown and not args.force_unlock:
        for lock in unknown:
            print(f"error: stack {stack} is locked by pid {lock.pid} on {lock.host} (not this machine, since {lock.since}); "
                  f"if no update of the stack runs there, run this again with --force-unlock (make recover ARGS=--force-unlock)", file=sys.stderr)
        return 2
    if orphans:
        print(f"error: plugin processes of an interrupted update of this project still run (pids {' '.join(map(str, orphans))}); "
              f"they may still act on Helm releases. Stop them (kill {' '.join(map(str, orphans))}) and run this again", file=sys.stderr)
        return 2
    done: list[str] = []
    try:
        # 2. The stale lock.
        if locks:
            run([tool("pulumi"), "cancel", "--yes", "--stack", stack, "--non-interactive"], 60, cwd=root, env=env)
            done.append(f"removed {len(locks)} stale lock(s) of stack {stack} (holder pid {', '.join(str(lock.pid) for lock in locks)} no longer runs): `pulumi cancel`")
        elif locks is None and args.force_unlock:
            run([tool("pulumi"), "cancel", "--yes", "--stack", stack, "--non-interactive"], 60, cwd=root, env=env)
            done.append(f"removed the lock of stack {stack}, if there was one (--force-unlock): `pulumi cancel`")
        elif locks is None:
            print(f"note: the state backend ({backend.split('://', 1)[0]}://) keeps its locks where this command cannot read them; "
                  f"if `up` says the stack is locked and no update of it runs anywhere, run this again with --force-unlock "
                  f"(make recover STACK={stack} ARGS=--force-unlock), which runs `pulumi cancel`")
        # 3. Helm releases, before the state: the next `up` starts from releases Helm will work on.
        for item in pending:
            done.append(repair_release(item, args.timeout))
        # 4. Pending operations.
        if pending_ops:
            clear_pending_operations(root, env, stack, state, args.timeout)
            listed = ", ".join(f"{op.get('type', '?')} {short_urn(op.get('resource', {}).get('urn', '?'))}" for op in pending_ops)
            done.append(f"removed {len(pending_ops)} pending operation(s) from the state of {stack}: {listed}")
        # 5. Helm's new revisions into the state, so the next preview and `make drift` start from what runs.
        urns = release_urns(state, [(p.namespace, p.name) for p in pending])
        if urns:
            refresh = [tool("pulumi"), "refresh", "--yes", "--skip-preview", "--non-interactive", "--stack", stack, "--suppress-outputs"]
            refresh += [arg for urn in urns.values() for arg in ("--target", urn)]
            result = run(refresh, args.timeout, cwd=root, env=env, check=False)
            if result.returncode == 0:
                done.append(f"read the repaired release(s) back into the state: `pulumi refresh --target` {', '.join(n for _, n in urns)}")
            else:
                print(f"warning: the state still records the revisions from before the repair (`pulumi refresh` failed: {result.stderr.strip()[-300:]}); "
                      f"run `make refresh STACK={stack}` once the passphrase is set, or `make drift` will report the Helm revision as drift", file=sys.stderr)
        # 6. Check.
        left = find_pending(releases, timeout_s=min(args.timeout, 60))
        _, ops_left = pending_operations(root, env, stack, args.timeout)
        locks_left = stack_locks(backend, stack) or []
    except (ToolError, PendingCheckError, ValueError) as error:
        for line in done:
            print(f"done: {line}")
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in done:
        print(f"done: {line}")
    if left or ops_left or locks_left:
        print(f"error: still not recovered: pending releases {[p.name for p in left]}, pending operations {len(ops_left)}, locks {len(locks_left)}", file=sys.stderr)
        return 2
    if not done:
        print(f"recover: nothing to repair in stack {stack} (no stale lock, no pending operation, no pending Helm release)")
    print(f"recover: stack {stack} is ready; next: make up STACK={stack}")
    return 0


if __name__ == "__main__":
    entry_point(main, "recover")
