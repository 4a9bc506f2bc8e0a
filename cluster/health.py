"""The local cluster's API as seen from outside, and its health: what runs, what answers, what is missing (Python standard library only)."""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import volumes
from layout import COMPONENTS, NODES, SETUP_HINT, Cluster, ClusterError, kwokctl_config
from processes import running_components, unrecorded_processes, volumes_pid


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
