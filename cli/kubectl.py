"""The pinned kubectl: one function every caller uses."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cli.process import ToolError, run, tool


def kubectl(args: list[str], timeout_s: float, *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`kubectl <args>` with the pinned binary, bounded: the server is asked to answer within timeout_s too.

    Raises cli.process.ToolError when kubectl is missing, fails (check=True) or hangs.
    """
    command = [tool("kubectl"), *args, f"--request-timeout={max(1, int(timeout_s))}s"]
    return run(command, timeout_s + 5, stdin=stdin, check=check)


def kustomize(folder: Path, timeout_s: float) -> str:
    """`kubectl kustomize <folder>`: the embedded kustomize builds the folder's kustomization (no cluster involved)."""
    return run([tool("kubectl"), "kustomize", str(folder)], timeout_s).stdout


@dataclass(frozen=True)
class ClusterFacts:
    """What a chart may ask of the cluster (Helm's .Capabilities), read without discovery of every resource."""

    kube_version: str
    """The server's gitVersion, e.g. v1.36.3."""
    api_versions: tuple[str, ...]
    """group/version of every served API (`v1` for the core group), sorted."""


def cluster_facts(timeout_s: float) -> ClusterFacts:
    """The server version and API group versions (`/version`, `/api`, `/apis`), asked side by side; ToolError when unreachable."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        version, core, groups = (pool.submit(kubectl, ["get", "--raw", path], timeout_s) for path in ("/version", "/api", "/apis"))
        server = json.loads(version.result().stdout).get("gitVersion")
        if not server:
            raise ToolError("the cluster reported no version (`kubectl get --raw /version`)")
        apis = set(json.loads(core.result().stdout).get("versions") or [])
        for group in json.loads(groups.result().stdout).get("groups") or []:
            apis.update(str(v.get("groupVersion")) for v in group.get("versions") or [] if v.get("groupVersion"))
    return ClusterFacts(kube_version=str(server), api_versions=tuple(sorted(apis)))


def helm_revisions(timeout_s: float) -> dict[tuple[str, str], tuple[int, str]]:
    """(namespace, release) -> (latest revision, status) of every Helm release: the labels of Helm's Secrets, metadata only."""
    from cli.pending import kubectl_command, parse_release_table

    return parse_release_table(kubectl(kubectl_command(None, timeout_s)[1:-1], timeout_s).stdout)


def start_cluster_facts(timeout_s: float = 10.0) -> Future[ClusterFacts | None]:
    """cluster_facts asked in the background (the program starts it while it loads); None when no cluster answers."""
    def ask() -> ClusterFacts | None:
        try:
            return cluster_facts(timeout_s)
        except (ToolError, ValueError):
            return None

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster-facts")
    future = pool.submit(ask)
    pool.shutdown(wait=False)
    return future


def cluster_scoped_kinds(timeout_s: float) -> frozenset[str]:
    """Kinds the cluster serves without a namespace (built-in and custom), from `kubectl api-resources --namespaced=false`."""
    out = kubectl(["api-resources", "--namespaced=false", "--no-headers"], timeout_s).stdout
    return frozenset(line.split()[-1] for line in out.splitlines() if line.split())


def kubeconfig_problem() -> str | None:
    """Why no cluster can be reached without even asking (no KUBECONFIG and no ~/.kube/config), else None."""
    configured = os.environ.get("KUBECONFIG")
    if configured:
        missing = [p for p in configured.split(os.pathsep) if p and not Path(p).is_file()]
        return f"KUBECONFIG names {missing}, which do not exist; `make cluster` writes .state/kubeconfig for the local stack" if missing else None
    if (Path.home() / ".kube" / "config").is_file():
        return None
    return "no kubeconfig: set KUBECONFIG (the make targets set it to .state/kubeconfig for the local stack)"
