#!/usr/bin/env python3
"""The project's local simulated Kubernetes cluster: ``up``, ``down``, ``status``.

Promises
--------
``up``
    Starts a cluster named ``astrago-local`` (``--name``) on 127.0.0.1 with
    kwokctl's ``binary`` runtime, using only the project's local binaries
    (``.tools/bin``: kwokctl, kwok, etcd, kube-apiserver,
    kube-controller-manager, kube-scheduler, kubectl). Nothing is
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
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import volumes
from health import Api, Health, assess
from layout import (
    COMPONENTS,
    DEFAULT_KUBECONFIG,
    DEFAULT_NAME,
    DEFAULT_PORT_BASE,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TOOLS,
    DEFAULT_WORKDIR,
    HOST,
    NODES,
    PORT_OFFSETS,
    ROOT,
    UP_HINT,
    Cluster,
    ClusterError,
    Deadline,
    check_binaries,
    find_kubectl,
    kwokctl_config,
    kwokctl_env,
)
from processes import (
    check_ports,
    log_tail,
    port_free,
    proc_alive,
    recorded_pids,
    running_components,
    terminate,
    unrecorded_processes,
    volumes_command,
    volumes_pid,
)


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
