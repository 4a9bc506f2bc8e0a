#!/usr/bin/env python3
"""The project's local simulated Kubernetes cluster: ``up``, ``down``, ``status``.

Promises
--------
``up``
    Starts a cluster named ``astrago-local`` (``--name``) on 127.0.0.1 with
    kwokctl's ``binary`` runtime, using only the project's local binaries
    (``.tools/bin``: kwokctl, kwok, etcd, kube-apiserver,
    kube-controller-manager, kube-scheduler; kubectl from PATH). Nothing is
    downloaded: every binary kwokctl could fetch is given as a local path and
    the optional components that would need downloads (metrics-server,
    Prometheus, Jaeger, dashboard, kueue, ...) are left out.
    It creates 3 CPU nodes and 2 GPU nodes (label ``nvidia.com/gpu.present=true``,
    capacity/allocatable ``nvidia.com/gpu: 4``, taint ``nvidia.com/gpu:NoSchedule``)
    simulated by kwok, whose default stages make pods Ready and Job pods
    complete, and writes a kubeconfig (``.state/kubeconfig``).
    It makes a default storage class (``standard``) and starts the volume
    provisioner (cluster/volumes.py, its own process, pid in the cluster's
    directory, log ``logs/volumes.log``), so claims of every existing storage
    class become Bound.
    Idempotent: a healthy cluster is left alone; missing nodes, the storage
    class or the provisioner are recreated. A half-dead one (processes gone,
    API not answering, stale pid files, changed configuration) is not
    replaced silently: restarting it loses everything deployed on it, so
    ``up`` says what would be lost (the Helm releases and namespaces it can
    still read, else its etcd data) and stops unless ``--replace`` is given
    (``make cluster ARGS=--replace``). One whose API answers and that holds
    no Helm release and no namespace of its own is replaced without asking. Every wait is bounded
    (``--timeout``, default 180 s) and a failure names what did not become
    ready and where its log is. A port already in use is reported by number.
``down``
    Stops the volume provisioner and every process the cluster started (by the pids kwokctl recorded,
    checked to belong to this cluster) and removes its data (its kwok
    directory, kubeconfig). Safe when nothing runs. Exit 1 only if a process
    of the cluster survives.
``status``
    Prints the state and a line ``nodes ready: N``; exit 0 when healthy,
    1 otherwise (with the ``make cluster`` hint).

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import volumes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAME = "astrago-local"
DEFAULT_WORKDIR = ROOT / ".state" / "kwok"
DEFAULT_KUBECONFIG = ROOT / ".state" / "kubeconfig"
DEFAULT_TOOLS = ROOT / ".tools" / "bin"
# Six consecutive ports from here (see PORT_OFFSETS). Below Linux's ephemeral
# range (32768+) so an outgoing connection never happens to hold one.
DEFAULT_PORT_BASE = 16443
DEFAULT_TIMEOUT_S = 180.0
HOST = "127.0.0.1"

# The processes kwokctl's binary runtime starts, in its start order. Each one
# records its pid in <cluster dir>/pids/<name>.pid and logs to logs/<name>.log.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")
# Component -> file in the tools dir (kwok's controller binary is named kwok).
COMPONENT_BINARIES = {
    "etcd": "etcd",
    "kube-apiserver": "kube-apiserver",
    "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    "kwok-controller": "kwok",
}
# Fixed ports rather than kwokctl's random ones: a stable API address for the
# kubeconfig, and a conflict is then detectable (and reportable) up front.
PORT_OFFSETS = {
    "kube-apiserver": 0,
    "etcd": 1,
    "etcd peer": 2,
    "kwok-controller": 3,
    "kube-controller-manager": 4,
    "kube-scheduler": 5,
}

SETUP_HINT = "run `make setup`"
UP_HINT = "run `make cluster` to (re)start it"


class ClusterError(Exception):
    """A failure to report to the user as one message (no traceback)."""


class Deadline:
    """A time budget shared by the successive waits of one operation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


# --------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeSpec:
    """One simulated node: name, whether it carries GPUs, its resources."""

    name: str
    gpu: bool
    index: int

    @property
    def resources(self) -> dict[str, str]:
        """Capacity (= allocatable): room for the whole platform with requests."""
        if self.gpu:
            return {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi", "nvidia.com/gpu": "4"}
        return {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}

    def manifest(self) -> dict[str, Any]:
        """The Node object; kwok's node-initialize stage keeps the given status."""
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/agent": "",
            "type": "kwok",
        }
        spec: dict[str, Any] = {
            # One pod CIDR per node so kwok hands out distinct pod IPs.
            "podCIDR": f"10.244.{self.index}.0/24",
            "podCIDRs": [f"10.244.{self.index}.0/24"],
        }
        if self.gpu:
            labels["nvidia.com/gpu.present"] = "true"
            spec["taints"] = [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                # kwok manages nodes carrying this annotation (kwokctl's own
                # node template sets it too).
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": labels,
            },
            "spec": spec,
            # A node's status is kept on create (as a kubelet registering);
            # kwok fills in conditions, addresses and nodeInfo.
            "status": {
                "capacity": self.resources,
                "allocatable": self.resources,
                # All nodes point at kwok's kubelet endpoint on loopback, so
                # `kubectl logs/exec` get an answer from kwok, not a timeout.
                "addresses": [{"type": "InternalIP", "address": HOST}],
            },
        }


NODES: tuple[NodeSpec, ...] = (
    *(NodeSpec(f"astrago-cpu-{i}", gpu=False, index=i) for i in range(3)),
    *(NodeSpec(f"astrago-gpu-{i}", gpu=True, index=3 + i) for i in range(2)),
)


# --------------------------------------------------------------------------
# Layout and configuration
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Cluster:
    """Where one cluster lives and how it is configured (from the command line)."""

    name: str
    workdir: Path  # KWOK_WORKDIR: kwokctl keeps clusters/<name> under it
    kubeconfig: Path
    tools: Path
    port_base: int

    @property
    def dir(self) -> Path:
        """kwokctl's directory for this cluster (config, pki, etcd data, pids, logs)."""
        return self.workdir / "clusters" / self.name

    @property
    def pid_dir(self) -> Path:
        return self.dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def bin_dir(self) -> Path:
        """kwokctl links each binary here and starts it from this path."""
        return self.dir / "bin"

    @property
    def config_file(self) -> Path:
        """The kwokctl configuration this script generated (outside kwokctl's dir)."""
        return self.workdir / f"{self.name}.kwokctl.yaml"

    @property
    def kwokctl_log(self) -> Path:
        return self.workdir / f"{self.name}.kwokctl.log"

    @property
    def lock_file(self) -> Path:
        return self.workdir / f"{self.name}.lock"

    @property
    def volumes_pid_file(self) -> Path:
        """The provisioner's pid (kwokctl does not know that process, so not in pids/)."""
        return self.dir / "volumes.pid"

    @property
    def volumes_log(self) -> Path:
        return self.log_dir / "volumes.log"

    def port(self, what: str) -> int:
        return self.port_base + PORT_OFFSETS[what]

    @property
    def api_url(self) -> str:
        return f"https://{HOST}:{self.port('kube-apiserver')}"

    def log(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def binary(self, name: str) -> Path:
        return self.tools / name


def find_kubectl(tools: Path) -> Path | None:
    """The pinned kubectl of the tools dir (`make setup` builds it), never one from PATH."""
    local = tools / "kubectl"
    return local if os.access(local, os.X_OK) else None


def required_binaries(c: Cluster) -> dict[str, Path | None]:
    """Every executable `up` needs, by name (None: not found)."""
    paths: dict[str, Path | None] = {"kwokctl": c.binary("kwokctl")}
    for comp in COMPONENTS:
        paths[COMPONENT_BINARIES[comp]] = c.binary(COMPONENT_BINARIES[comp])
    paths["kubectl"] = find_kubectl(c.tools)
    return paths


def check_binaries(c: Cluster) -> Path:
    """Fail naming `make setup` unless every binary is there; return kubectl's path."""
    missing = [name if p is None else str(p) for name, p in required_binaries(c).items()
               if p is None or not os.access(p, os.X_OK)]
    if missing:
        raise ClusterError(f"missing binaries: {', '.join(missing)}; {SETUP_HINT}")
    kubectl = find_kubectl(c.tools)
    assert kubectl is not None
    return kubectl


def q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def kwokctl_config(c: Cluster, kubectl: Path) -> str:
    """The KwokctlConfiguration for this cluster, as YAML text.

    Every binary is a local path: kwokctl then only symlinks it into the
    cluster's bin dir (a URL would be downloaded). The component list is
    explicit, so nothing optional (metrics-server, Prometheus, Jaeger,
    dashboard: all downloads) is started; their ports stay 0, which is what
    keeps them off. No Stage objects are given, so kwokctl installs kwok's
    default stages (node-initialize, node heartbeat, pod-ready,
    pod-complete, pod-delete): pods become Ready and Job pods Succeed.
    """
    options = {
        "runtime": "binary",
        "bindAddress": HOST,
        "securePort": "true",
        "kubeApiserverPort": c.port("kube-apiserver"),
        "etcdPort": c.port("etcd"),
        "etcdPeerPort": c.port("etcd peer"),
        "kwokControllerPort": c.port("kwok-controller"),
        "kubeControllerManagerPort": c.port("kube-controller-manager"),
        "kubeSchedulerPort": c.port("kube-scheduler"),
        "etcdBinary": q(str(c.binary("etcd"))),
        "kubeApiserverBinary": q(str(c.binary("kube-apiserver"))),
        "kubeControllerManagerBinary": q(str(c.binary("kube-controller-manager"))),
        "kubeSchedulerBinary": q(str(c.binary("kube-scheduler"))),
        "kwokControllerBinary": q(str(c.binary("kwok"))),
        # kwokctl runs kubectl to see the API served; it would fetch one if
        # none were on PATH.
        "kubectlBinary": q(str(kubectl)),
        # Only a download would write here; kept inside the workdir anyway.
        "cacheDir": q(str(c.workdir / "cache")),
    }
    lines = [
        "# Generated by cluster/cluster.py; changing it recreates the cluster.",
        "apiVersion: config.kwok.x-k8s.io/v1alpha1",
        "kind: KwokctlConfiguration",
        "options:",
        *(f"  {k}: {v}" for k, v in options.items()),
        "  components:",
        *(f"  - {comp}" for comp in COMPONENTS),
        # The API server reaches "kubelets" (kwok) by InternalIP first, which
        # the nodes set to loopback (see NodeSpec.manifest).
        "componentsPatches:",
        "- name: kube-apiserver",
        "  extraArgs:",
        "  - key: kubelet-preferred-address-types",
        "    value: InternalIP,Hostname",
        "",
    ]
    return "\n".join(lines)


def kwokctl_env(c: Cluster) -> dict[str, str]:
    """The environment for kwokctl: our workdir, and no inherited KWOK_* settings.

    kwokctl lets KWOK_* variables override the configuration file (e.g. a
    KWOK_KUBE_BINARY_PREFIX pointing at a download site), so they are dropped.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWOK_")}
    env["KWOK_WORKDIR"] = str(c.workdir)
    return env


# --------------------------------------------------------------------------
# Processes and ports
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------

class Api:
    """A minimal client for the cluster's API, authenticated with kwokctl's admin cert."""

    def __init__(self, c: Cluster) -> None:
        pki = c.dir / "pki"
        self.base = c.api_url
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        # No proxy: a proxy from the environment must not see loopback traffic.
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or text); status 0 if the server did not answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (OSError, ssl.SSLError):
            return 0, None
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ready(self) -> bool:
        status, body = self.request("GET", "/readyz", timeout=3.0)
        return status == 200 and body == "ok"

    def nodes(self) -> dict[str, bool]:
        """Node name -> Ready, or raises ClusterError if the API does not answer."""
        status, body = self.request("GET", "/api/v1/nodes")
        if status != 200 or not isinstance(body, dict):
            raise ClusterError(f"listing nodes failed (HTTP {status})")
        result = {}
        for item in body.get("items", []):
            conds = item.get("status", {}).get("conditions", []) or []
            result[item["metadata"]["name"]] = any(
                x.get("type") == "Ready" and x.get("status") == "True" for x in conds)
        return result


# --------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------

@dataclass
class Health:
    """What is running and answering; `state` sums it up."""

    exists: bool = False
    running: dict[str, int] = field(default_factory=dict)
    strays: list[int] = field(default_factory=list)
    kubectl_found: bool = True
    config_current: bool = False
    api_ready: bool = False
    nodes: dict[str, bool] = field(default_factory=dict)
    kubeconfig_current: bool = False
    volumes_running: bool = False
    storage_class: bool = False

    @property
    def dead(self) -> list[str]:
        return [comp for comp in COMPONENTS if comp not in self.running]

    @property
    def nodes_ready(self) -> int:
        return sum(self.nodes.values())

    @property
    def nodes_missing(self) -> list[str]:
        return [n.name for n in NODES if not self.nodes.get(n.name)]

    @property
    def state(self) -> str:
        """absent | healthy | degraded (only nodes/kubeconfig to fix) | stale (restart)."""
        if not self.exists and not self.running and not self.strays:
            return "absent"
        if self.dead or self.strays or not self.config_current or not self.api_ready:
            return "stale"
        if self.nodes_missing or not self.kubeconfig_current or not self.volumes_running or not self.storage_class:
            return "degraded"
        return "healthy"

    def problems(self, c: Cluster) -> list[str]:
        """Each thing that keeps the cluster from being healthy, with where to look."""
        out = []
        if not self.kubectl_found:
            out.append(f"kubectl not found ({SETUP_HINT})")
        elif self.exists and not self.config_current:
            out.append(f"it was started with another configuration than {c.config_file}")
        if self.strays:
            out.append(f"processes of it without pid files: {', '.join(map(str, self.strays))}")
        if self.exists and self.dead:
            out.append(f"not running: {', '.join(self.dead)} (logs: {c.log_dir})")
        if not self.dead and not self.api_ready:
            out.append(f"the API at {c.api_url} does not answer (log: {c.log('kube-apiserver')})")
        if self.api_ready and self.nodes_missing:
            out.append(f"nodes missing or not Ready: {', '.join(self.nodes_missing)} (log: {c.log('kwok-controller')})")
        if self.api_ready and not self.kubeconfig_current:
            out.append(f"kubeconfig {c.kubeconfig} is missing or out of date")
        if self.api_ready and not self.storage_class:
            out.append(f"the default storage class {volumes.DEFAULT_CLASS!r} is missing")
        if self.api_ready and not self.volumes_running:
            out.append(f"the volume provisioner is not running (log: {c.volumes_log})")
        return out


def assess(c: Cluster, kubectl: Path | None) -> Health:
    """Look at the cluster without changing anything."""
    h = Health(exists=c.dir.exists(), running=running_components(c), strays=unrecorded_processes(c),
               kubectl_found=kubectl is not None)
    if not h.exists:
        return h
    if kubectl is not None:
        try:
            h.config_current = c.config_file.read_text() == kwokctl_config(c, kubectl)
        except OSError:
            h.config_current = False
    if "kube-apiserver" in h.running and (c.dir / "pki" / "admin.key").exists():
        api = Api(c)
        # A busy API server may miss one probe; since "not ready" makes `up`
        # recreate the cluster (losing what is deployed), probe a few times.
        for attempt in range(3):
            h.api_ready = api.ready()
            if h.api_ready or attempt == 2:
                break
            time.sleep(attempt + 1.0)
        if h.api_ready:
            with contextlib.suppress(ClusterError):
                h.nodes = api.nodes()
            h.storage_class = api.request("GET", f"/apis/storage.k8s.io/v1/storageclasses/{volumes.DEFAULT_CLASS}")[0] == 200
        h.volumes_running = volumes_pid(c) is not None
    try:
        h.kubeconfig_current = c.kubeconfig.read_bytes() == (c.dir / "kubeconfig.yaml").read_bytes()
    except OSError:
        h.kubeconfig_current = False
    return h


# --------------------------------------------------------------------------
# up / down
# --------------------------------------------------------------------------

@contextlib.contextmanager
def locked(c: Cluster) -> Iterator[None]:
    """Serialise up/down of one cluster (e.g. two `make` runs at once)."""
    c.workdir.mkdir(parents=True, exist_ok=True)
    with open(c.lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def say(msg: str) -> None:
    print(f"cluster: {msg}", flush=True)


def fail_if_dead(c: Cluster, started: list[str]) -> None:
    """Stop waiting at once when a started component has exited."""
    running = running_components(c)
    for comp in started:
        if comp not in running:
            raise ClusterError(
                f"{comp} exited during startup; log: {c.log(comp)}\n{log_tail(c.log(comp))}\n"
                f"The cluster is left as is for inspection; `make cluster-down` removes it, "
                f"`make cluster` restarts it.")


def start_processes(c: Cluster, kubectl: Path, deadline: Deadline) -> None:
    """Run `kwokctl create cluster`; fail fast if a component dies or time runs out."""
    c.workdir.mkdir(parents=True, exist_ok=True)
    c.config_file.write_text(kwokctl_config(c, kubectl))
    cmd = [
        str(c.binary("kwokctl")), "--name", c.name, "--config", str(c.config_file),
        "create", "cluster",
        # Empty: do not touch ~/.kube/config; ours is copied from the cluster dir.
        "--kubeconfig", "",
        "--timeout", f"{int(deadline.left)}s",
        "--wait", "0s",
    ]
    with open(c.kwokctl_log, "w") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=kwokctl_env(c), cwd=c.workdir)
        try:
            while proc.poll() is None:
                if deadline.expired():
                    raise ClusterError(
                        f"kwokctl did not finish starting the cluster within {deadline.seconds:.0f} s; "
                        f"log: {c.kwokctl_log}, component logs: {c.log_dir}")
                # A component that already wrote its pid and is gone failed.
                fail_if_dead(c, [comp for comp in recorded_pids(c) if comp in COMPONENTS])
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()  # our own child, by its pid
                proc.wait()
    if proc.returncode != 0:
        raise ClusterError(f"kwokctl create cluster failed (exit {proc.returncode}); "
                           f"log: {c.kwokctl_log}\n{log_tail(c.kwokctl_log)}")
    fail_if_dead(c, list(COMPONENTS))


def wait_api(c: Cluster, deadline: Deadline) -> Api:
    api = Api(c)
    while not api.ready():
        fail_if_dead(c, list(COMPONENTS))
        if deadline.expired():
            raise ClusterError(f"the API at {c.api_url} did not become ready within {deadline.seconds:.0f} s; "
                               f"log: {c.log('kube-apiserver')}\n{log_tail(c.log('kube-apiserver'))}")
        time.sleep(0.2)
    return api


def ensure_nodes(c: Cluster, api: Api, deadline: Deadline) -> dict[str, bool]:
    """Create the missing nodes and wait until all of them are Ready."""
    existing = api.nodes()
    for node in NODES:
        if node.name not in existing:
            status, body = api.request("POST", "/api/v1/nodes", node.manifest())
            if status not in (201, 409):  # 409: created meanwhile
                raise ClusterError(f"creating node {node.name} failed (HTTP {status}): {body}")
    while True:
        nodes = api.nodes()
        waiting = [n.name for n in NODES if not nodes.get(n.name)]
        if not waiting:
            return nodes
        fail_if_dead(c, list(COMPONENTS))
        if deadline.expired():
            raise ClusterError(f"nodes not Ready within {deadline.seconds:.0f} s: {', '.join(waiting)}; "
                               f"kwok simulates them, log: {c.log('kwok-controller')}\n"
                               f"{log_tail(c.log('kwok-controller'))}")
        time.sleep(0.2)


def wait_controllers(c: Cluster, api: Api, deadline: Deadline) -> None:
    """Wait until the scheduler and controller manager lead and the default ServiceAccount exists.

    Pods are only scheduled, and only admitted in a namespace, once these
    hold; Helm's first release would otherwise race them.
    """
    checks = {
        "kube-scheduler": "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler",
        "kube-controller-manager": "/api/v1/namespaces/default/serviceaccounts/default",
    }
    for comp, path in checks.items():
        while api.request("GET", path)[0] != 200:
            fail_if_dead(c, list(COMPONENTS))
            if deadline.expired():
                raise ClusterError(f"{comp} did not become active within {deadline.seconds:.0f} s "
                                   f"(no {path}); log: {c.log(comp)}\n{log_tail(c.log(comp))}")
            time.sleep(0.2)


def write_kubeconfig(c: Cluster) -> None:
    """Copy kwokctl's kubeconfig (context kwok-<name>) to ours, atomically."""
    c.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    tmp = c.kubeconfig.with_name(c.kubeconfig.name + ".tmp")
    tmp.write_bytes((c.dir / "kubeconfig.yaml").read_bytes())
    tmp.chmod(0o600)
    tmp.replace(c.kubeconfig)


def describe_nodes(nodes: dict[str, bool]) -> str:
    gpu = sum(1 for n in NODES if n.gpu and nodes.get(n.name))
    return f"{sum(nodes.values())} nodes Ready ({sum(nodes.values()) - gpu} CPU, {gpu} GPU)"


# --------------------------------------------------------------------------
# Volumes: the default storage class and the provisioner process
# --------------------------------------------------------------------------

SCRIPT = Path(__file__).resolve()


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


def start_volumes(c: Cluster) -> None:
    """Start the provisioner in its own session (it outlives `up`); fail if it exits at once."""
    c.log_dir.mkdir(parents=True, exist_ok=True)
    with open(c.volumes_log, "a") as log:
        proc = subprocess.Popen(volumes_command(c), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=c.workdir)
    c.volumes_pid_file.write_text(f"{proc.pid}\n")
    time.sleep(0.3)
    if proc.poll() is not None:
        raise ClusterError(f"the volume provisioner exited at once (exit {proc.returncode}); log: {c.volumes_log}\n{log_tail(c.volumes_log)}")


def stop_volumes(c: Cluster) -> list[int]:
    """Stop the provisioner by its recorded pid; return it if it survives."""
    pid = volumes_pid(c)
    if pid is None:
        return []
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and proc_alive(pid):
            time.sleep(0.05)
        if not proc_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                c.volumes_pid_file.unlink()
            return []
    return [pid]


def ensure_storage_class(api: Api) -> None:
    status, body = api.request("POST", "/apis/storage.k8s.io/v1/storageclasses", volumes.storage_class_manifest())
    if status not in (201, 409):
        raise ClusterError(f"creating the storage class {volumes.DEFAULT_CLASS!r} failed (HTTP {status}): {body}")


def serve_volumes(c: Cluster) -> int:
    """The provisioner process (`cluster.py volumes`): runs while the cluster's directory names it."""
    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} volumes: {msg}", flush=True)

    def keep_going() -> bool:
        try:
            return int(c.volumes_pid_file.read_text().strip()) == os.getpid()
        except (OSError, ValueError):
            return False

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # `up` writes the pid file right after starting this process.
    deadline = Deadline(5.0)
    while not keep_going():
        if deadline.expired():
            log(f"{c.volumes_pid_file} does not name this process; not starting")
            return 1
        time.sleep(0.05)
    return volumes.run(Api(c), log, keep_going)


# --------------------------------------------------------------------------
# What replacing a cluster would lose
# --------------------------------------------------------------------------

SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


NOTHING_DEPLOYED = "nothing but the cluster itself (no Helm release, no namespace of its own)"


def deployed_on(c: Cluster, h: Health) -> str:
    """What is deployed on the cluster, as far as it can still be read (NOTHING_DEPLOYED when it holds nothing)."""
    if h.api_ready:
        api = Api(c)
        status, body = api.request("GET", "/api/v1/secrets?labelSelector=owner%3Dhelm", timeout=10.0)
        releases = sorted({f"{i['metadata']['namespace']}/{i['metadata']['labels'].get('name', '?')}"
                           for i in (body.get("items", []) if status == 200 and isinstance(body, dict) else [])})
        status, body = api.request("GET", "/api/v1/namespaces", timeout=10.0)
        namespaces = sorted(i["metadata"]["name"] for i in (body.get("items", []) if status == 200 and isinstance(body, dict) else [])
                            if i["metadata"]["name"] not in SYSTEM_NAMESPACES)
        if releases or namespaces:
            def listed(items: list[str]) -> str:
                return ", ".join(items[:12]) + (", ..." if len(items) > 12 else "")
            parts = [f"{len(releases)} Helm release(s) ({listed(releases)})"] if releases else []
            parts.append(f"{len(namespaces)} namespace(s) ({listed(namespaces)})")
            return " in ".join(parts) if releases else parts[0]
        return NOTHING_DEPLOYED
    etcd = c.dir / "etcd"
    size = sum(f.stat().st_size for f in etcd.rglob("*") if f.is_file()) if etcd.is_dir() else 0
    return f"everything deployed on it (the API does not answer; its etcd data: {size // 1024} KiB in {etcd})"


def up(c: Cluster, timeout_s: float, replace: bool = False) -> int:
    """Bring the cluster to healthy; see the module docstring."""
    kubectl = check_binaries(c)
    deadline = Deadline(timeout_s)
    started_at = time.monotonic()
    with locked(c):
        h = assess(c, kubectl)
        if h.state == "healthy":
            say(f"{c.name} is already running ({describe_nodes(h.nodes)}, API {c.api_url}); nothing to do")
            say(f"kubeconfig: {c.kubeconfig}")
            return 0
        if h.state == "degraded":
            say(f"{c.name} is running; repairing: {'; '.join(h.problems(c))}")
            api = Api(c)
        else:
            if h.state == "stale":
                lost = deployed_on(c, h) if h.exists else NOTHING_DEPLOYED
                if lost != NOTHING_DEPLOYED and not replace:
                    raise ClusterError(
                        f"{c.name} is not healthy ({'; '.join(h.problems(c))}). Starting it again means a new, empty "
                        f"cluster: {lost} would be lost. Nothing was changed. To replace it, run "
                        f"`make cluster ARGS=--replace` (cluster.py up --replace); to remove it, `make cluster-down`.")
                say(f"{c.name} is not healthy ({'; '.join(h.problems(c))}); replacing it"
                    + (f" (--replace: {lost} is lost)" if lost != NOTHING_DEPLOYED else f" ({lost} was on it)"))
                stop_volumes(c)
                stop(c, quiet=True)
            # Right after a teardown the old sockets may take a moment to close.
            check_ports(c, settle_s=3.0 if h.state == "stale" else 0.0)
            say(f"starting {c.name} (kwokctl binary runtime, workdir {c.workdir}, API {c.api_url})")
            start_processes(c, kubectl, deadline)
            api = wait_api(c, deadline)
            say(f"API ready after {time.monotonic() - started_at:.1f} s")
        nodes = ensure_nodes(c, api, deadline)
        wait_controllers(c, api, deadline)
        ensure_storage_class(api)
        if volumes_pid(c) is None:
            start_volumes(c)
        write_kubeconfig(c)
        say(f"{c.name} is up after {time.monotonic() - started_at:.1f} s: {describe_nodes(nodes)}, "
            f"storage class {volumes.DEFAULT_CLASS!r} (default), volume provisioner pid {volumes_pid(c)}")
        say(f"kubeconfig: {c.kubeconfig}  (export KUBECONFIG={c.kubeconfig})")
    return 0


def stop(c: Cluster, quiet: bool = False) -> list[str]:
    """Stop the cluster's processes and remove its data; return what could not be stopped."""
    left_volumes = stop_volumes(c)
    if left_volumes:
        return [f"volume provisioner (pid {left_volumes[0]})"]
    recorded = running_components(c)
    strays = unrecorded_processes(c)
    # kwokctl kills whatever pid a pid file names if that pid is alive; a
    # stale file (pid since reused by an unrelated process) must not reach it.
    for pid_file in c.pid_dir.glob("*.pid"):
        if pid_file.stem not in recorded:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    kwokctl = c.binary("kwokctl")
    if (c.dir / "kwok.yaml").exists() and os.access(kwokctl, os.X_OK):
        # kwokctl's own teardown first (kills by its pid files, removes the dir).
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                [str(kwokctl), "--name", c.name, "delete", "cluster", "--kubeconfig", str(c.kubeconfig)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=kwokctl_env(c), cwd=c.workdir, timeout=60, check=False)
    # Then make sure: every process we knew of, by pid, and only if still ours.
    survivors = terminate([*recorded.values(), *strays], c)
    left = [f"{comp} (pid {pid})" for comp, pid in recorded.items() if pid in survivors]
    left += [f"pid {pid}" for pid in strays if pid in survivors]
    if left:
        # Keep the data: the pid files are how a later `down` finds them.
        return left
    shutil.rmtree(c.dir, ignore_errors=True)
    for f in (c.config_file, c.kwokctl_log, c.kubeconfig, c.kubeconfig.with_name(c.kubeconfig.name + ".tmp")):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    # The workdir itself only when no other cluster lives there.
    for d in (c.workdir / "clusters", c.workdir / "cache"):
        with contextlib.suppress(OSError):
            d.rmdir()
    if not quiet and (recorded or strays):
        say(f"stopped {len(recorded) + len(strays)} processes of {c.name}")
    return left


def down(c: Cluster) -> int:
    """Stop and remove the cluster; exit 1 only if one of its processes survives."""
    started_at = time.monotonic()
    if not c.workdir.exists() and not c.kubeconfig.exists() and not unrecorded_processes(c) and volumes_pid(c) is None:
        say(f"{c.name} is not running; nothing to do")
        return 0
    with locked(c):
        left = stop(c)
        if left:
            print(f"cluster: error: could not stop: {', '.join(left)}", file=sys.stderr)
            return 1
        with contextlib.suppress(FileNotFoundError):
            c.lock_file.unlink()
        with contextlib.suppress(OSError):
            c.workdir.rmdir()
    # The kernel frees a killed server's ports a moment after it exits.
    deadline = Deadline(5.0)
    while (busy := [f"{HOST}:{c.port(w)} ({w})" for w in PORT_OFFSETS if not port_free(c.port(w))]) \
            and not deadline.expired():
        time.sleep(0.1)
    if busy:
        # Not ours any more (all our processes are gone): report, do not fail.
        say(f"note: ports still in use by other processes: {', '.join(busy)}")
    say(f"{c.name} is down and its data removed ({time.monotonic() - started_at:.1f} s)")
    return 0


def status(c: Cluster) -> int:
    """Print the state and `nodes ready: N`; 0 if healthy."""
    h = assess(c, find_kubectl(c.tools))
    if h.state == "absent":
        say(f"{c.name} is not running")
    elif h.state == "healthy":
        say(f"{c.name} is running and healthy (API {c.api_url})")
    else:
        say(f"{c.name} is not healthy: {'; '.join(h.problems(c))}")
    for comp in COMPONENTS:
        if h.state != "absent":
            state = f"running (pid {h.running[comp]})" if comp in h.running else "not running"
            print(f"  {comp}: {state}")
    if h.state != "absent":
        pid = volumes_pid(c)
        print(f"  volume provisioner: {f'running (pid {pid})' if pid else 'not running'}")
        print(f"  kubeconfig: {c.kubeconfig}")
    print(f"nodes ready: {h.nodes_ready}")
    if h.state != "healthy":
        print(f"hint: {UP_HINT}")
        return 1
    return 0


def parse_args(argv: list[str]) -> tuple[str, Cluster, float, bool]:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=DEFAULT_NAME, help="cluster name (default: %(default)s)")
    common.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="kwok work directory, KWOK_WORKDIR (default: %(default)s)")
    common.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG,
                        help="kubeconfig to write (default: %(default)s)")
    common.add_argument("--tools", type=Path, default=DEFAULT_TOOLS,
                        help="directory of the built binaries (default: %(default)s)")
    common.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE,
                        help="first of 6 consecutive loopback ports (default: %(default)s)")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds `up` may wait in all (default: %(default)s)")
    parser = argparse.ArgumentParser(prog="cluster.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", parents=[common], help="start the cluster (no-op when healthy)")
    start.add_argument("--replace", action="store_true",
                       help="replace a half-dead cluster by a new, empty one (everything deployed on it is lost)")
    sub.add_parser("down", parents=[common], help="stop the cluster and remove its data")
    sub.add_parser("status", parents=[common], help="print the state; exit 0 when healthy")
    sub.add_parser("volumes", parents=[common], help="(started by `up`) the volume provisioner of a running cluster")
    args = parser.parse_args(argv)
    if not 1024 <= args.port_base <= 65535 - len(PORT_OFFSETS):
        parser.error("--port-base must leave 6 ports between 1024 and 65535")
    c = Cluster(name=args.name, workdir=args.workdir.resolve(), kubeconfig=args.kubeconfig.resolve(),
                tools=args.tools.resolve(), port_base=args.port_base)
    return args.command, c, args.timeout, bool(getattr(args, "replace", False))


def main(argv: list[str] | None = None) -> int:
    command, c, timeout_s, replace = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if command == "up":
            return up(c, timeout_s, replace)
        if command == "volumes":
            return serve_volumes(c)
        if command == "down":
            return down(c)
        return status(c)
    except ClusterError as e:
        print(f"cluster: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run as a script (python3 cluster/cluster.py): the project's shared error reporting is one folder up.
    sys.path.insert(0, str(ROOT))
    from model.errors import entry_point

    entry_point(main, "cluster")
