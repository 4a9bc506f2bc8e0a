"""Say why `make up` could not run or did not finish, and what to do: the step after a failed update.

`python -m commands.diagnose --stack <stack> [--release NAME]` (run by `make up` when pulumi
fails; `make diagnose` by hand). It reads, and changes nothing:

- whether the cluster answers at all: when it does not, the engine's only
  advice is `PULUMI_K8S_DELETE_UNREACHABLE=true`, which would drop every
  release from the state; this says where the cluster is and what to do;
- the stack's lock: held by an update that still runs (wait), or left by one
  that was killed (`make recover`), which Pulumi's own message calls a job
  for `pulumi cancel`, leaving the Helm releases and the processes of the
  killed update as they are;
- pending operations left in the state by an interrupted update;
- with --release, or without any of the above: each enabled release whose
  latest Helm revision failed or is pending, explained as the program
  explains a release that failed (cli/diagnosis.py): the objects that were
  not ready and why, and the rollback that followed.

Exit 0 when it found nothing to say, 1 when it explained something, 2 when
it could not look.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.diagnosis import diagnose
from cli.helm import helm_releases
from cli.kubectl import kubectl
from cli.leftovers import find_leftovers
from cli.pending import UNREACHABLE, cluster_server, unreachable_message
from cli.process import ToolError
from cli.pulumi import backend_url, pending_operations, pulumi_env, stack_locks
from commands import ROOT
from model.catalog import load_catalog
from model.deployment import enabled_releases
from model.errors import InputError
from model.stackfile import stack_settings

NOT_READY = ("failed", "pending-install", "pending-upgrade", "pending-rollback")


def cluster_advice(stack: str, timeout_s: float) -> list[str]:
    """Why the stack's cluster cannot be reached, as the program says it ([] when it answers)."""
    result = kubectl(["get", "--raw", "/readyz"], min(timeout_s, 15), check=False)
    reason = result.stderr.strip()
    if result.returncode == 0 or not UNREACHABLE.search(reason):
        return []
    return [unreachable_message(cluster_server(), reason, stack)]


def lock_advice(stack: str, root: Path, timeout_s: float) -> list[str]:
    """What the stack's lock, leftover processes and pending operations mean, one paragraph each ([] when none)."""
    env = pulumi_env(root)
    backend = backend_url(root, env, timeout_s)
    said: list[str] = []
    for lock in stack_locks(backend, stack) or []:
        alive = lock.holder_alive()
        if alive is True:
            said.append(f"stack {stack} is locked by an update that is still running: pid {lock.pid} ({lock.user}@{lock.host}, since {lock.since}). "
                        f"Wait for it to end; to stop it, Ctrl-C in its terminal or `kill -INT {lock.pid}`.")
        elif alive is False:
            said.append(f"stack {stack} is locked by an update that no longer runs (pid {lock.pid}, {lock.user}@{lock.host}, since {lock.since}): "
                        f"it was interrupted. Run `make recover STACK={stack}`, then `make up STACK={stack}`. "
                        f"(Not `pulumi cancel` alone: it removes the lock but leaves the interrupted update's processes, "
                        f"pending Helm releases and pending operations.)")
        else:
            said.append(f"stack {stack} is locked by pid {lock.pid} on {lock.host} (another machine, since {lock.since}). "
                        f"If no update of it runs there, run `make recover STACK={stack} ARGS=--force-unlock`.")
    taken = [lock.taken() for lock in stack_locks(backend, stack) or []]
    mine, _ = find_leftovers(root, backend, stack, locked_since=min((s for s in taken if s is not None), default=None))
    if mine and not said:
        said.append(f"processes of an interrupted update of stack {stack} still run ({', '.join(p.describe() for p in mine)}); "
                    f"`make recover STACK={stack}` lets them finish or stops them, then repairs the stack.")
    _, ops = pending_operations(root, env, stack, timeout_s)
    if ops and not said:
        said.append(f"the state of stack {stack} holds {len(ops)} pending operation(s) of an interrupted update; "
                    f"run `make recover STACK={stack}`, then `make up STACK={stack}`.")
    return said


def release_reports(stack: str, root: Path, only: str | None, timeout_s: float) -> list[str]:
    """The explanation of each enabled release (or `only`) whose latest Helm revision failed or is pending."""
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    enabled = enabled_releases(catalog, stack_settings(root, stack, catalog))
    chosen = [r for r in catalog.releases if r.name in enabled and (only is None or r.name == only)]
    latest = helm_releases([r.name for r in chosen], timeout_s)
    reports = []
    for release in chosen:
        held = latest.get((release.namespace, release.name))
        if only is None and (held is None or held.status not in NOT_READY):
            continue
        neighbours = {r.name for r in catalog.releases if r.namespace == release.namespace and r.name != release.name}
        reports.append(diagnose(release.name, release.namespace, neighbours, timeout_s=timeout_s))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--release", help="explain this release whatever its status")
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder (default: this repository)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds each call may take (default 30)")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    try:
        said = cluster_advice(args.stack, args.timeout) + lock_advice(args.stack, root, args.timeout)
        if not said or args.release:
            said += release_reports(args.stack, root, args.release, args.timeout)
    except (ToolError, InputError, ValueError) as error:
        print(f"diagnose: could not look at stack {args.stack}: {error}", file=sys.stderr)
        return 2
    for paragraph in said:
        print(f"diagnose: {paragraph}", file=sys.stderr)
    return 1 if said else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
