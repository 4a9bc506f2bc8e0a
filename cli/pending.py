"""Pre-flight: find this stack's Helm releases left in a pending-* status.

An update killed while Helm installs, upgrades or rolls back a release leaves
the release's latest revision pending-install, pending-upgrade or
pending-rollback. Helm then refuses every further operation on it ("another
operation (install/upgrade/rollback) is in progress", or "cannot re-use a
name that is still in use"), so the next `pulumi up` would fail halfway
through a tier. `check_not_pending` finds such releases before anything
acts and names the recovery command.

The check is one `kubectl get secrets` call (the pinned kubectl): Helm keeps
one Secret per revision, labelled owner=helm, name, status and version.
kubectl's default (table) output makes the API server send object metadata
only, so release contents (which hold values, secrets included) never leave
the cluster.

The same call tells whether the cluster answers at all. When it does not,
the program stops before the engine asks the Kubernetes provider, whose
only advice would be `PULUMI_K8S_DELETE_UNREACHABLE=true`: that drops every
release from the state.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cli.process import ToolError, tool
from cli.process import run as run_tool
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
    """The cluster could not be asked (no kubectl, forbidden, ...)."""


class ClusterUnreachable(PendingCheckError):
    """The cluster's API server did not answer (refused, no route, timeout, unknown host)."""


# What kubectl (client-go) says when no API server answers, as opposed to one that answers with an error.
UNREACHABLE = re.compile(
    r"Unable to connect to the server|connection to the server .* was refused|connection refused|no route to host"
    r"|i/o timeout|no such host|TLS handshake timeout|context deadline exceeded|Client\.Timeout|network is unreachable"
)


def kubectl_command(names: Iterable[str] | None, timeout_s: float, kubectl: str = "kubectl") -> list[str]:
    """The one kubectl call: every Helm release Secret (of these release names, if given), metadata only."""
    selector = "owner=helm" if names is None else f"owner=helm,name in ({','.join(sorted(set(names)))})"
    return [kubectl, "get", "secrets", "--all-namespaces", "--selector", selector,
            "--label-columns", ",".join(LABELS), "--no-headers", f"--request-timeout={int(timeout_s)}s"]


def _pinned_kubectl() -> str:
    try:
        return tool("kubectl")
    except ToolError as error:
        raise PendingCheckError(str(error)) from None


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
        self.process: subprocess.Popen[str] | None = None
        try:
            self.command = kubectl_command(None, timeout_s, _pinned_kubectl())
        except PendingCheckError as error:
            self.command, self.start_error = [], str(error)
            return
        self.start_error = ""
        try:
            self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as error:
            self.start_error = f"kubectl could not be started: {error}"

    def run(self, _command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        if self.process is None:
            raise PendingCheckError(self.start_error)
        try:
            out, err = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.close()
            raise
        return subprocess.CompletedProcess(self.command, self.process.returncode, out, err)

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
    command = kubectl_command({name for _, name in wanted}, timeout_s, _pinned_kubectl() if run is _run else "kubectl")
    try:
        result = run(command, timeout_s + 5)
    except subprocess.TimeoutExpired:
        raise ClusterUnreachable(f"`kubectl get secrets` did not answer within {timeout_s + 5:.0f} s") from None
    if result.returncode != 0:
        reason = result.stderr.strip()[-400:]
        if UNREACHABLE.search(reason):
            raise ClusterUnreachable(reason)
        raise PendingCheckError(f"`kubectl get secrets` failed: {reason}")
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


def cluster_server(timeout_s: float = 10.0) -> str:
    """The API server the current kubeconfig context points at ('' when it names none)."""
    try:
        result = run_tool([tool("kubectl"), "config", "view", "--minify", "--output", "jsonpath={.clusters[0].cluster.server}"], timeout_s, check=False)
    except ToolError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def unreachable_message(server: str, reason: str, stack: str) -> str:
    """Why the stack cannot be previewed or deployed now, what to do, and that nothing was touched."""
    where = f"the cluster at {server}" if server else "the cluster of the current kubeconfig context"
    kubeconfig = os.environ.get("KUBECONFIG") or "~/.kube/config"
    start = "start it with `make cluster`" if stack == "local" else "start it or reconnect to it (VPN, tunnel)"
    return (
        f"{where} is unreachable: {reason.splitlines()[-1] if reason else 'no answer'}. "
        f"Kubeconfig: {kubeconfig}. {start[0].upper()}{start[1:]}, or point KUBECONFIG at the cluster of stack {stack!r}, "
        f"then run this again. The stack's state is untouched (do not set PULUMI_K8S_DELETE_UNREACHABLE=true: "
        f"it would drop every release from the state while they keep running)."
    )


def check_not_pending(stack: str, releases: Iterable[tuple[str, str]], warn: Callable[[str], None], timeout_s: float = 20.0,
                      run: Runner = _run, server: Callable[[], str] = cluster_server) -> None:
    """Raise InputError naming every pending release of the stack, or the cluster that does not answer.

    Any other failure to ask (kubectl missing, access forbidden) only warns:
    the Helm operations then fail on their own, with their own message.
    """
    try:
        pending = find_pending(releases, timeout_s, run)
    except ClusterUnreachable as error:
        raise InputError(unreachable_message(server(), str(error), stack)) from None
    except PendingCheckError as error:
        warn(f"could not check for Helm releases left pending by an interrupted update: {error}")
        return
    if pending:
        raise InputError(*(describe(p, stack) for p in pending))
