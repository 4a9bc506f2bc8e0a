"""The local simulated cluster (cluster/cluster.py) with real processes, no mocks.

The main cluster (`make cluster`, name astrago-local) is started or reused
and left running. `down` is exercised on a separate throwaway cluster (own
name, work directory, kubeconfig and ports) so the main one is undisturbed.
Nothing skips: a missing binary fails with the command that provides it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

# These tests start and stop the main local cluster: never while another worker's file uses it.
pytestmark = pytest.mark.usefixtures("main_cluster_turn")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "cluster" / "cluster.py"
TOOLS = ROOT / ".tools" / "bin"
MAIN_KUBECONFIG = ROOT / ".state" / "kubeconfig"
BINARIES = ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")
PORTS_PER_CLUSTER = 6
GPU_LABEL = "nvidia.com/gpu.present"


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(TOOLS / "kubectl"), "--kubeconfig", str(kubeconfig), *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def alive(pid: int) -> bool:
    """Running, or a zombie whose threads are still exiting (and may hold ports)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] not in ("Z", "X"):
        return True
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base() -> int:
    """The first of PORTS_PER_CLUSTER free consecutive loopback ports, away from the main cluster's."""
    for base in range(17443, 18443, 10):
        if all(port_free(base + i) for i in range(PORTS_PER_CLUSTER)):
            return base
    raise AssertionError("no 6 consecutive free ports between 17443 and 18443 on 127.0.0.1")


def pids_of(workdir: Path, name: str) -> dict[str, int]:
    pid_dir = workdir / "clusters" / name / "pids"
    return {f.stem: int(f.read_text().strip()) for f in pid_dir.glob("*.pid")}


def volumes_pid(workdir: Path, name: str) -> int:
    return int((workdir / "clusters" / name / "volumes.pid").read_text().strip())


def nodes_ready(status_stdout: str) -> int:
    lines = [line for line in status_stdout.splitlines() if line.startswith("nodes ready: ")]
    assert lines, f"status printed no `nodes ready: N` line:\n{status_stdout}"
    return int(lines[-1].removeprefix("nodes ready: "))


@pytest.fixture(scope="module")
def tools() -> None:
    missing = [str(TOOLS / b) for b in BINARIES if not os.access(TOOLS / b, os.X_OK)]
    assert not missing, f"missing {', '.join(missing)}: run `make setup` (the cluster tests need the real binaries)"
    assert subprocess.run([str(TOOLS / "kubectl"), "version", "--client"], capture_output=True).returncode == 0, "the pinned kubectl does not run: `make setup`"


@pytest.fixture(scope="module")
def main_cluster(tools: None) -> Path:
    """The main cluster, started (or reused when healthy); its kubeconfig."""
    result = run_script("up")
    assert result.returncode == 0, f"cluster.py up failed:\n{result.stdout}\n{result.stderr}"
    assert MAIN_KUBECONFIG.exists(), f"cluster.py up wrote no {MAIN_KUBECONFIG}"
    return MAIN_KUBECONFIG


def workload(namespace: str) -> dict[str, Any]:
    """A 2-replica Deployment and a Job that needs a GPU (so it must land on a GPU node)."""
    labels = {"app": "e2e-web"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "web", "image": "registry.invalid/web:1", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
        },
    }
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "gpu-job", "namespace": namespace},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {GPU_LABEL: "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "work", "image": "registry.invalid/cuda:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        }}},
    }
    return {"apiVersion": "v1", "kind": "List", "items": [deployment, job]}


def test_main_cluster_has_gpu_nodes_and_runs_workloads(main_cluster: Path) -> None:
    again = run_script("up", timeout=60)
    assert again.returncode == 0 and "already running" in again.stdout, f"a second `up` should be a no-op:\n{again.stdout}\n{again.stderr}"
    status = run_script("status", timeout=60)
    assert status.returncode == 0, f"status of a healthy cluster must exit 0:\n{status.stdout}\n{status.stderr}"
    assert nodes_ready(status.stdout) >= 5, status.stdout

    nodes = json.loads(kubectl(main_cluster, "get", "nodes", "-o", "json").stdout)["items"]
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))]
    assert len(ready) >= 5, f"expected >= 5 Ready nodes: {[n['metadata']['name'] for n in ready]}"
    gpu = [n for n in ready if n["metadata"].get("labels", {}).get(GPU_LABEL) == "true"]
    assert len(gpu) == 2, f"expected 2 GPU nodes labelled {GPU_LABEL}=true: {[n['metadata']['name'] for n in gpu]}"
    for node in gpu:
        name = node["metadata"]["name"]
        assert node["status"]["capacity"].get("nvidia.com/gpu") == "4", f"{name} capacity: {node['status']['capacity']}"
        assert node["status"]["allocatable"].get("nvidia.com/gpu") == "4", f"{name} allocatable: {node['status']['allocatable']}"
        taints = node["spec"].get("taints", [])
        assert {"key": "nvidia.com/gpu", "effect": "NoSchedule"} in [{"key": t["key"], "effect": t["effect"]} for t in taints], f"{name} taints: {taints}"
    assert len(ready) - len(gpu) >= 3, "expected >= 3 Ready CPU nodes"

    namespace = f"e2e-cluster-{uuid.uuid4().hex[:8]}"
    kubectl(main_cluster, "create", "namespace", namespace)
    try:
        kubectl(main_cluster, "apply", "-f", "-", stdin=json.dumps(workload(namespace)))
        kubectl(main_cluster, "-n", namespace, "wait", "deployment/web", "--for=condition=Available", "--timeout=90s")
        kubectl(main_cluster, "-n", namespace, "wait", "job/gpu-job", "--for=condition=Complete", "--timeout=90s")
        deployment = json.loads(kubectl(main_cluster, "-n", namespace, "get", "deployment/web", "-o", "json").stdout)
        assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
        pods = json.loads(kubectl(main_cluster, "-n", namespace, "get", "pods", "-l", "job-name=gpu-job", "-o", "json").stdout)["items"]
        gpu_names = {n["metadata"]["name"] for n in gpu}
        assert pods and all(p["spec"].get("nodeName") in gpu_names for p in pods), f"the GPU job ran outside the GPU nodes: {[p['spec'].get('nodeName') for p in pods]}"
    finally:
        # Not waited for: the namespace controller finishes it in the background.
        kubectl(main_cluster, "delete", "namespace", namespace, "--wait=false")


def test_down_stops_every_process_of_a_throwaway_cluster(tools: None, tmp_path: Path) -> None:
    name = f"e2e-down-{uuid.uuid4().hex[:6]}"
    workdir, kubeconfig, base = tmp_path / "kwok", tmp_path / "kubeconfig", free_port_base()
    ports = [base + i for i in range(PORTS_PER_CLUSTER)]
    opts = ["--name", name, "--workdir", str(workdir), "--kubeconfig", str(kubeconfig), "--port-base", str(base), "--timeout", "120"]
    main_was_healthy = run_script("status", timeout=60).returncode == 0

    # A taken port is reported by number before anything starts.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports[2]))
        blocker.listen()
        refused = run_script("up", *opts)
    assert refused.returncode != 0 and f"127.0.0.1:{ports[2]}" in refused.stderr and "in use" in refused.stderr, refused.stderr
    assert not (workdir / "clusters" / name).exists(), "nothing may start when a port is taken"

    seen: set[int] = set()
    try:
        up = run_script("up", *opts)
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        first = pids_of(workdir, name)
        assert sorted(first) == sorted(COMPONENTS), first
        assert all(alive(p) for p in first.values()), first
        assert not any(port_free(p) for p in ports), "the cluster should listen on all its ports"
        seen |= set(first.values())

        provisioner = volumes_pid(workdir, name)
        assert alive(provisioner), "up starts the volume provisioner"
        seen.add(provisioner)

        # Half-dead (one component gone) with something on it: status says so; `up` refuses to replace it
        # without --replace, naming what would be lost, and changes nothing; `up --replace` replaces it.
        kubectl(kubeconfig, "create", "namespace", "e2e-precious")
        os.kill(first["kube-scheduler"], 9)
        stale = run_script("status", *opts, timeout=60)
        assert stale.returncode != 0 and "kube-scheduler" in stale.stdout and "make cluster" in stale.stdout, stale.stdout
        refused_replace = run_script("up", *opts)
        assert refused_replace.returncode == 1, f"{refused_replace.stdout}\n{refused_replace.stderr}"
        assert "e2e-precious" in refused_replace.stderr and "would be lost" in refused_replace.stderr, refused_replace.stderr
        assert "--replace" in refused_replace.stderr and "Nothing was changed" in refused_replace.stderr, refused_replace.stderr
        assert "Traceback" not in refused_replace.stderr
        assert all(alive(p) for comp, p in first.items() if comp != "kube-scheduler"), "a refused up must leave the cluster as it was"
        restarted = run_script("up", "--replace", *opts)
        assert restarted.returncode == 0 and "replacing" in restarted.stdout, f"{restarted.stdout}\n{restarted.stderr}"
        assert not alive(provisioner), "the replaced cluster's provisioner is stopped"
        seen.add(volumes_pid(workdir, name))
        second = pids_of(workdir, name)
        assert sorted(second) == sorted(COMPONENTS) and all(alive(p) for p in second.values()), second
        assert not any(alive(p) for p in first.values()), "the restart left processes of the first run"
        healthy = run_script("status", *opts, timeout=60)
        assert healthy.returncode == 0 and nodes_ready(healthy.stdout) == 5, healthy.stdout
        seen |= set(second.values())

        down = run_script("down", *opts, timeout=120)
        assert down.returncode == 0, f"down failed:\n{down.stdout}\n{down.stderr}"
        left = [p for p in seen if alive(p)]
        assert not left, f"processes of the cluster survived down: {left}"
        taken = [p for p in ports if not port_free(p)]
        assert not taken, f"ports still in use after down: {taken}"
        assert not workdir.exists(), f"down left {workdir}: {list(workdir.rglob('*'))[:10]}"
        assert not kubeconfig.exists(), f"down left {kubeconfig}"

        again = run_script("down", *opts, timeout=60)
        assert again.returncode == 0, f"down with nothing running must succeed:\n{again.stdout}\n{again.stderr}"
        gone = run_script("status", *opts, timeout=60)
        assert gone.returncode != 0 and nodes_ready(gone.stdout) == 0, gone.stdout
    finally:
        run_script("down", *opts, timeout=120)

    if main_was_healthy:
        after = run_script("status", timeout=60)
        assert after.returncode == 0, f"the throwaway cluster disturbed the main one:\n{after.stdout}"


def _claim(name: str, namespace: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_claims_of_any_storage_class_become_bound(cluster: Path) -> None:
    """The e2e cluster's provisioner: a claim of astrago-nfs-csi, one of a StatefulSet's template, one of the default class."""
    namespace = f"e2e-volumes-{uuid.uuid4().hex[:6]}"
    classes = json.loads(kubectl(cluster, "get", "storageclass", "-o", "json").stdout)["items"]
    default = [c["metadata"]["name"] for c in classes if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert default == ["standard"], default
    made_class = "astrago-nfs-csi" not in {c["metadata"]["name"] for c in classes}
    nfs_class = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "astrago-nfs-csi"},
                 "provisioner": "nfs.csi.k8s.io", "parameters": {"server": "10.0.0.1", "share": "/e2e"}, "volumeBindingMode": "Immediate"}
    labels = {"app": "e2e-db"}
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": namespace},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "db", "image": "registry.invalid/db:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": _claim("data", namespace, "astrago-nfs-csi")["spec"]}]},
    }
    items = [*([nfs_class] if made_class else []), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
             _claim("registry", namespace, "astrago-nfs-csi"), _claim("plain", namespace, None), statefulset]
    try:
        kubectl(cluster, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        for claim in ("registry", "plain", "data-db-0"):
            kubectl(cluster, "wait", "-n", namespace, "--for=jsonpath={.status.phase}=Bound", f"pvc/{claim}", "--timeout=90s")
        claims = {c["metadata"]["name"]: c for c in json.loads(kubectl(cluster, "get", "pvc", "-n", namespace, "-o", "json").stdout)["items"]}
        assert claims["registry"]["spec"]["storageClassName"] == "astrago-nfs-csi" and claims["data-db-0"]["spec"]["storageClassName"] == "astrago-nfs-csi"
        assert claims["plain"]["spec"]["storageClassName"] == "standard", "a claim without a class gets the default one"
        assert claims["registry"]["status"]["capacity"]["storage"] == "2Gi"
        kubectl(cluster, "rollout", "status", "-n", namespace, "statefulset/db", "--timeout=90s")
        volumes = [claims[c]["spec"]["volumeName"] for c in claims]
    finally:
        kubectl(cluster, "delete", "namespace", namespace, "--wait=true", "--timeout=120s")
        if made_class:
            kubectl(cluster, "delete", "storageclass", "astrago-nfs-csi")
    # Released by the deleted claims, the provisioner's volumes go too.
    for volume in volumes:
        kubectl(cluster, "wait", "--for=delete", f"pv/{volume}", "--timeout=90s")
