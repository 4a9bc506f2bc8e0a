"""Volumes for the local simulated cluster: a default storage class and a small provisioner.

kwok simulates nodes and pods but no storage, so without this every claim
stays Pending and every release with persistence times out. The provisioner
stands in for whatever a real cluster runs (the NFS CSI driver, a cloud
disk driver) and acts like one, for claims of ANY existing storage class:

- a Pending claim without a volume gets a PersistentVolume made for it
  (name ``pvc-<claim uid>``, the claim's class, size, access modes and volume
  mode, pre-bound by ``claimRef``); the cluster's own PV controller then
  binds the two, as it does for a dynamically provisioned volume;
- a claim of a ``WaitForFirstConsumer`` class waits, as on a real cluster,
  until the scheduler has picked a node for its pod;
- a claim of a class that does not exist stays Pending (a real cluster
  does the same), and so does a claim that selects volumes by label;
- a volume it made whose claim is gone (``Released``) is deleted.

Nothing is stored: the volumes are hostPath entries that nothing mounts.
The provisioner is its own process, started and stopped with the cluster
(``cluster.py up`` / ``down``), and stops by itself when the API has not
answered for ``API_GONE_S`` seconds. Python 3.11 standard library only.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

DEFAULT_CLASS = "standard"
PROVISIONER = "astrago.local/volumes"
MANAGED_LABEL = "astrago.local/volumes"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
POLL_S = 1.0
API_GONE_S = 30.0


class ApiClient(Protocol):
    """What the provisioner needs of the cluster's API (cluster.Api)."""

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]: ...


def storage_class_manifest() -> dict[str, Any]:
    """The cluster's default class: claims without a class get it (DefaultStorageClass admission)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": DEFAULT_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            "labels": {MANAGED_LABEL: "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def volume_name(claim: dict[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def volume_for(claim: dict[str, Any]) -> dict[str, Any]:
    """The PersistentVolume made for a claim, pre-bound to it."""
    meta, spec = claim["metadata"], claim.get("spec", {})
    size = (spec.get("resources", {}).get("requests", {}) or {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "labels": {MANAGED_LABEL: "true"},
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "storageClassName": spec.get("storageClassName") or "",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                         "name": meta["name"], "uid": meta["uid"]},
            "hostPath": {"path": f"/var/lib/astrago-volumes/{meta['namespace']}/{meta['name']}", "type": "DirectoryOrCreate"},
        },
    }


def wants_volume(claim: dict[str, Any], classes: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """Whether to make a volume for the claim now, and if not, why not (for the log)."""
    spec = claim.get("spec", {})
    if claim.get("status", {}).get("phase") != "Pending" or spec.get("volumeName"):
        return False, "bound or being bound"
    if spec.get("selector"):
        return False, "selects volumes by label"
    name = spec.get("storageClassName")
    if name:
        if name not in classes:
            return False, f"storage class {name!r} does not exist"
        if classes[name].get("volumeBindingMode") == "WaitForFirstConsumer" and \
                SELECTED_NODE not in (claim["metadata"].get("annotations") or {}):
            return False, "waits for its pod to be scheduled (WaitForFirstConsumer)"
    return True, ""


def _items(api: ApiClient, path: str) -> list[dict[str, Any]] | None:
    status, body = api.request("GET", path, timeout=10.0)
    if status != 200 or not isinstance(body, dict):
        return None
    return list(body.get("items") or [])


def sync_once(api: ApiClient, log: Callable[[str], None]) -> bool:
    """One pass: make the volumes claims wait for, delete released ones; False if the API did not answer."""
    claims = _items(api, "/api/v1/persistentvolumeclaims")
    classes_list = _items(api, "/apis/storage.k8s.io/v1/storageclasses")
    volumes = _items(api, "/api/v1/persistentvolumes")
    if claims is None or classes_list is None or volumes is None:
        return False
    classes = {c["metadata"]["name"]: c for c in classes_list}
    existing = {v["metadata"]["name"]: v for v in volumes}
    for claim in claims:
        ok, _why = wants_volume(claim, classes)
        if not ok or volume_name(claim) in existing:
            continue
        status, body = api.request("POST", "/api/v1/persistentvolumes", volume_for(claim))
        where = f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"
        if status in (200, 201):
            log(f"made {volume_name(claim)} for claim {where} (class {claim['spec'].get('storageClassName') or '-'})")
        elif status != 409:
            log(f"could not make a volume for claim {where}: HTTP {status} {str(body)[:200]}")
    for volume in volumes:
        meta = volume["metadata"]
        if (meta.get("labels") or {}).get(MANAGED_LABEL) == "true" and volume.get("status", {}).get("phase") == "Released":
            status, _ = api.request("DELETE", "/api/v1/persistentvolumes/" + urllib.parse.quote(meta["name"]))
            if status in (200, 202, 404):
                log(f"deleted released {meta['name']}")
    return True


def run(api: ApiClient, log: Callable[[str], None], keep_going: Callable[[], bool]) -> int:
    """Poll until keep_going() is False or the API has been gone for API_GONE_S; 0 on a clean stop."""
    log(f"provisioner running (class {DEFAULT_CLASS!r} is the default; claims of every existing class are served)")
    last_answer = time.monotonic()
    while keep_going():
        if sync_once(api, log):
            last_answer = time.monotonic()
        elif time.monotonic() - last_answer > API_GONE_S:
            log(f"the API has not answered for {API_GONE_S:.0f} s; stopping")
            return 1
        time.sleep(POLL_S)
    log("provisioner stopped")
    return 0
