"""Pre-flight: find this stack's Helm releases left in a pending-* status.

An update killed while Helm installs, upgrades or rolls back a release leaves
the release's latest revision pending-install, pending-upgrade or
pending-rollback. Helm then refuses every further operation on it ("another
operation (install/upgrade/rollback) is in progress", or "cannot re-use a
name that is still in use"), so the next `pulumi up` would fail halfway
through a tier. `check_not_pending` finds such releases before anything
acts and names the recovery command.

The check is one `kubectl get secrets` call: Helm keeps one Secret per
revision, labelled owner=helm, name, status and version. kubectl's default
(table) output makes the API server send object metadata only, so release
contents (which hold values, secrets included) never leave the cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from model.errors import InputError

PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")
# Label columns, in the order kubectl prints them after its own columns.
LABELS = ("name", "status", "version")

Runner = Callable[[list[str], float], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class PendingRelease:
    """The latest revision of a Helm release, found in a pending-* status."""

    namespace: str
    name: str
    status: str
    revision: int


class PendingCheckError(RuntimeError):
    """The cluster could not be asked (no kubectl, unreachable, forbidden, timeout)."""


def kubectl_command(names: Iterable[str] | None, timeout_s: float) -> list[str]:
    """The one kubectl call: every Helm release Secret (of these release names, if given), metadata only."""
    selector = "owner=helm" if names is None else f"owner=helm,name in ({','.join(sorted(set(names)))})"
    return ["kubectl", "get", "secrets", "--all-namespaces", "--selector", selector,
            "--label-columns", ",".join(LABELS), "--no-headers", f"--request-timeout={int(timeout_s)}s"]


def parse_release_table(text: str) -> dict[tuple[str, str], tuple[int, str]]:
    """(namespace, release) -> (latest revision, its status), from kubectl's table with label columns.

    A rollback leaves the revision it replaced as it was, possibly
    pending-upgrade, so only the latest revision of each release counts.
    """
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        # NAMESPACE NAME TYPE DATA AGE name status version; label values hold no spaces.
        if len(fields) < 2 + len(LABELS):
            continue
        namespace = fields[0]
        name, status, version = fields[-3:]
        if not version.isdigit():
            continue
        key, revision = (namespace, name), int(version)
        if key not in latest or revision > latest[key][0]:
            latest[key] = (revision, status)
    return latest


def _run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


class PendingQuery:
    """The pre-flight's kubectl call, started before it is needed and read when it is.

    The program starts it first thing, so kubectl (about 30 ms) answers while
    the program loads instead of before the first registration. It asks for
    every Helm release's Secrets (find_pending keeps the stack's). `run` is a
    Runner for find_pending and check_not_pending: it returns this call's
    result, whatever command it is given.
    """

    def __init__(self, timeout_s: float = 20.0) -> None:
        self.command = kubectl_command(None, timeout_s)
        self.process: subprocess.Popen[str] | None = None
        self.result: subprocess.CompletedProcess[str] | None = None
        """The answer, kept: the render reads the same table (every release's latest revision)."""
        self.start_error = "kubectl is not on PATH"
        if shutil.which("kubectl") is None:
            return
        try:
            self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as error:
            self.start_error = f"kubectl could not be started: {error}"

    def run(self, _command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        if self.result is not None:
            return self.result
        if self.process is None:
            raise PendingCheckError(self.start_error)
        try:
            out, err = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.close()
            raise
        self.result = subprocess.CompletedProcess(self.command, self.process.returncode, out, err)
        return self.result

    def close(self) -> None:
        """Stop the call if it still runs (the program stopped before reading it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def find_pending(releases: Iterable[tuple[str, str]], timeout_s: float = 20.0, run: Runner = _run) -> list[PendingRelease]:
    """The releases among (namespace, name) whose latest revision is pending-*.

    Raises PendingCheckError when the cluster cannot be asked.
    """
    wanted = set(releases)
    if not wanted:
        return []
    if run is _run and shutil.which("kubectl") is None:
        raise PendingCheckError("kubectl is not on PATH")
    command = kubectl_command({name for _, name in wanted}, timeout_s)
    try:
        result = run(command, timeout_s + 5)
    except subprocess.TimeoutExpired:
        raise PendingCheckError(f"`kubectl get secrets` did not answer within {timeout_s + 5:.0f} s") from None
    if result.returncode != 0:
        raise PendingCheckError(f"`kubectl get secrets` failed: {result.stderr.strip()[-400:]}")
    latest = parse_release_table(result.stdout)
    return sorted(
        (PendingRelease(namespace=ns, name=name, status=status, revision=revision)
         for (ns, name), (revision, status) in latest.items() if (ns, name) in wanted and status in PENDING_STATUSES),
        key=lambda p: (p.namespace, p.name),
    )


def describe(pending: PendingRelease, stack: str) -> str:
    """What is wrong with one pending release and the command that repairs it."""
    action = "uninstall it (it never deployed)" if pending.status == "pending-install" else "roll it back to its last deployed revision"
    return (
        f"Helm release {pending.name!r} in namespace {pending.namespace!r} is {pending.status} (revision {pending.revision}): "
        f"an earlier update was interrupted while Helm worked on it, and Helm refuses any further operation on it "
        f"(\"another operation (install/upgrade/rollback) is in progress\"). If no `pulumi up` of stack {stack!r} is running, "
        f"run `make recover STACK={stack}` (it will {action}, and clear the stack's stale lock and pending operations), "
        f"then `make up STACK={stack}`."
    )


def check_not_pending(stack: str, releases: Iterable[tuple[str, str]], warn: Callable[[str], None], timeout_s: float = 20.0,
                      run: Runner = _run) -> None:
    """Raise InputError naming every pending release of the stack; warn (and go on) when the cluster cannot be asked.

    A failed check only warns: without a cluster the Helm operations fail on
    their own, and a preview should still show the program's changes.
    """
    try:
        pending = find_pending(releases, timeout_s, run)
    except PendingCheckError as error:
        warn(f"could not check for Helm releases left pending by an interrupted update: {error}")
        return
    if pending:
        raise InputError(*(describe(p, stack) for p in pending))
