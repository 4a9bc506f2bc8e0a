"""Repair a stack after `pulumi up` was interrupted hard, so the next `make up` runs.

`python -m commands.recover --stack <stack> [--release NAME]` (`make recover`).
An update stopped hard (SIGKILL of the CLI or of all its processes, a lost
machine, a CI job killed, SIGINT to every process as a container stop sends)
can leave four things, repaired in this order:

1. processes of the update that outlive a killed CLI: its language host, the
   program and the provider plugins (cli/leftovers.py says how they are told
   from anything else). A provider waiting on Helm would, when its wait ends,
   roll back or uninstall under the repair. They get `--wait` seconds to
   finish, then are stopped (SIGTERM, then SIGKILL), by pid.
2. a lock file of the stack in a file (DIY) backend: the next `up` says "the
   stack is currently locked". Removed with `pulumi cancel` once the pid the
   lock names no longer runs on this machine.
3. Helm releases whose latest revision is pending-install, pending-upgrade
   or pending-rollback: Helm refuses any operation on them. Each is rolled
   back to its newest deployed revision (`helm rollback --wait`), or
   uninstalled when it never deployed (a pending-install of revision 1).
4. pending operations in the state ("interrupted while creating/updating"):
   one targeted `pulumi refresh` with the CLI's own flag
   `--clear-pending-creates`; its new checkpoint drops the other pending
   operations (updating, deleting), and it reads the repaired releases back.
   A create Helm did finish (the release is deployed, revision 1, but the
   state never recorded it) is uninstalled, so the next `up` installs it
   again with the state knowing it: the CLI's `--import-pending-creates`
   marks the operation as an import, yet the refresh does not add the
   resource (pulumi 3.259: the operation is dropped), and `pulumi import`
   would store the release's values, credentials included, unencrypted.

Nothing is changed while an update still runs (its lock holder is alive).
Running it on a healthy stack changes nothing. Exit 0 when the stack is
ready for `make up`, 2 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from cli.helm import HelmRelease, helm_history, helm_releases, rollback, uninstall
from cli.kubectl import kubeconfig_problem
from cli.leftovers import alive, find_leftovers, wait_then_stop
from cli.pending import PendingCheckError, PendingRelease, find_pending
from cli.process import ToolError
from cli.pulumi import backend_url, cancel, pending_operations, pulumi_env, refresh, stack_locks
from commands import ROOT
from model.catalog import load_catalog
from model.errors import InputError, entry_point
from model.identity import RELEASE_TYPE, STACK_TYPE, urn_name


def refresh_args(stack: str, state: dict[str, Any], pending_ops: list[dict[str, Any]], repaired: list[tuple[str, str]]) -> list[str]:
    """The arguments of the `pulumi refresh` that clears the pending operations and reads the repaired releases back.

    `--clear-pending-creates` drops the pending creates, and the refresh's new
    checkpoint no longer carries the other pending operations (updating,
    deleting), which the engine keeps only until the next operation.
    Targeted: only the releases touched here and the resources of the pending
    operations are read, so drift elsewhere stays for `make drift` to report.
    """
    in_state = {r.get("urn") for r in (state.get("deployment") or {}).get("resources") or []}
    targets = set(release_urns(state, repaired).values())
    targets |= {str(op["resource"]["urn"]) for op in pending_ops if (op.get("resource") or {}).get("urn") in in_state}
    if not targets:
        # Nothing to read back: the stack resource alone, so the refresh writes a checkpoint and reads nothing else.
        targets = {str(r["urn"]) for r in (state.get("deployment") or {}).get("resources") or [] if r.get("type") == STACK_TYPE}
    command = ["refresh", "--yes", "--skip-preview", "--non-interactive", "--stack", stack, "--suppress-outputs"]
    if any(op.get("type") == "creating" for op in pending_ops):
        command.append("--clear-pending-creates")
    return command + [arg for urn in sorted(targets) for arg in ("--target", urn)]


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
    target = rollback_target(helm_history(pending.namespace, pending.name, timeout_s), pending.revision)
    if target is None:
        uninstall(pending.namespace, pending.name, timeout_s)
        return f"{pending.name} ({pending.namespace}): {pending.status} revision {pending.revision} never deployed: uninstalled"
    rollback(pending.namespace, pending.name, target, timeout_s)
    return f"{pending.name} ({pending.namespace}): {pending.status} revision {pending.revision}: rolled back to revision {target}"


def release_urns(state: dict[str, Any], releases: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(namespace, name) -> URN of the Helm release resources the state holds."""
    found = {}
    for resource in (state.get("deployment") or {}).get("resources") or []:
        inputs = resource.get("inputs") or {}
        key = (str(inputs.get("namespace", "")), str(inputs.get("name", "")))
        if resource.get("type") == RELEASE_TYPE and key in releases:
            found[key] = resource["urn"]
    return found


def finished_creates(pending_ops: list[dict[str, Any]], installed: dict[tuple[str, str], HelmRelease]) -> list[tuple[str, HelmRelease]]:
    """(URN, what Helm holds) of interrupted Helm release creates that did finish: Helm holds the release, deployed."""
    done = []
    for op in pending_ops:
        resource = op.get("resource") or {}
        inputs = resource.get("inputs") or {}
        key = (str(inputs.get("namespace", "")), str(inputs.get("name", "")))
        if op.get("type") == "creating" and resource.get("type") == RELEASE_TYPE and key in installed and installed[key].status == "deployed":
            done.append((str(resource["urn"]), installed[key]))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--release", help="repair only this Helm release (the lock and pending operations are the stack's)")
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder (default: this repository)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each helm/pulumi call may take (default 300)")
    parser.add_argument("--wait", type=float, default=15.0,
                        help="seconds to let processes of a killed update finish before they are stopped (default 15)")
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
    done: list[str] = []
    try:
        # 1. Change nothing while an update still runs.
        backend = backend_url(root, env, 60)
        locks = stack_locks(backend, stack)
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
        # 2. What a killed CLI left running would act on Helm releases after the repair: let it finish, else stop it.
        taken = [lock.taken() for lock in locks or []]
        mine, others = find_leftovers(root, backend, stack, locked_since=min((s for s in taken if s is not None), default=None))
        if others:
            print(f"note: processes of an interrupted update of another stack of this project still run, left alone: "
                  f"{', '.join(p.describe() for p in others)}")
        if mine:
            ended, stopped = wait_then_stop([p.pid for p in mine], args.wait)
            named = {p.pid: p.program for p in mine}
            if ended:
                done.append(f"waited for {len(ended)} process(es) of the interrupted update to end: {', '.join(f'{pid} {named[pid]}' for pid in ended)}")
            if stopped:
                done.append(f"stopped {len(stopped)} process(es) the interrupted update left running (not ended after {args.wait:.0f} s): "
                            f"{', '.join(f'{pid} {named[pid]}' for pid in stopped)}")
            unstopped = [pid for pid in stopped if alive(pid)]
            if unstopped:
                raise ToolError(f"processes of the interrupted update do not stop: pids {' '.join(map(str, unstopped))}")
        # 3. Look at what the interruption left.
        state, pending_ops = pending_operations(root, env, stack, args.timeout)
        pending = find_pending(releases, timeout_s=min(args.timeout, 60))
        finished = finished_creates(pending_ops, helm_releases([name for _, name in releases], min(args.timeout, 60)))
        adopt = [held for _, held in finished if held.revision != 1]
        if adopt:
            for held in adopt:
                print(f"error: the interrupted update was creating Helm release {held.namespace}/{held.name}, which Helm already held "
                      f"(revision {held.revision}, deployed) and the state does not: nothing was changed. To keep it, adopt it "
                      f"(README, Migrating from Helmfile: `pulumi config set --path 'adopt[0]' {held.name} --stack {stack}`, then "
                      f"`PULUMI_SKIP_CHECKPOINTS=true make up STACK={stack}`); to install it anew, `helm uninstall {held.name} "
                      f"--namespace {held.namespace}` and run this again", file=sys.stderr)
            return 2
        encrypted = ((state.get("deployment") or {}).get("secrets_providers") or {}).get("type") == "passphrase"
        passphrase = any(os.environ.get(k) for k in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"))
        if (pending_ops or pending) and encrypted and not passphrase:
            print(f"error: repairing stack {stack} ends with `pulumi refresh`, which needs the stack's passphrase: "
                  f"set PULUMI_CONFIG_PASSPHRASE (or _FILE) and run this again; nothing was changed", file=sys.stderr)
            return 2
        # 4. The stale lock.
        if locks:
            cancel(root, env, stack)
            done.append(f"removed {len(locks)} stale lock(s) of stack {stack} (holder pid {', '.join(str(lock.pid) for lock in locks)} no longer runs): `pulumi cancel`")
        elif locks is None and args.force_unlock:
            cancel(root, env, stack)
            done.append(f"removed the lock of stack {stack}, if there was one (--force-unlock): `pulumi cancel`")
        elif locks is None:
            print(f"note: the state backend ({backend.split('://', 1)[0]}://) keeps its locks where this command cannot read them; "
                  f"if `up` says the stack is locked and no update of it runs anywhere, run this again with --force-unlock "
                  f"(make recover STACK={stack} ARGS=--force-unlock), which runs `pulumi cancel`")
        # 5. Helm releases, before the state: the next `up` starts from releases Helm will work on.
        for item in pending:
            done.append(repair_release(item, args.timeout))
        for _, held in finished:
            uninstall(held.namespace, held.name, args.timeout)
            done.append(f"{held.name} ({held.namespace}): installed by the interrupted update, which never recorded it in the state: "
                        f"uninstalled, so that `make up` installs it again")
        # 6. Pending operations out of the state and the repaired releases read back in: one `pulumi refresh`.
        repaired = [(p.namespace, p.name) for p in pending]
        if pending_ops or release_urns(state, repaired):
            refresh_command = refresh_args(stack, state, pending_ops, repaired)
            refresh(root, env, refresh_command[1:], args.timeout)
            if pending_ops:
                listed = ", ".join(f"{op.get('type', '?')} {urn_name(op.get('resource', {}).get('urn', '?'))}" for op in pending_ops)
                done.append(f"removed {len(pending_ops)} pending operation(s) from the state of {stack}: {listed} "
                            f"(`pulumi refresh{' --clear-pending-creates' if '--clear-pending-creates' in refresh_command else ''} --target ...`)")
            if repaired:
                done.append(f"read the repaired release(s) back into the state: {', '.join(n for _, n in repaired)}")
        # 7. Check.
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
