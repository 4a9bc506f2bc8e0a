"""The local cluster's layout and configuration: its names, ports, folders, nodes and kwokctl's configuration (Python standard library only)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
