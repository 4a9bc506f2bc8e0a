"""The local cluster's volume provisioner (cluster/volumes.py) against a fake API: which claims get a volume."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("volumes", ROOT / "cluster" / "volumes.py")
assert _spec and _spec.loader
volumes = importlib.util.module_from_spec(_spec)
sys.modules["volumes"] = volumes
_spec.loader.exec_module(volumes)


def claim(name: str, cls: str | None, phase: str = "Pending", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}, **extra}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"metadata": {"name": name, "namespace": "harbor", "uid": f"uid-{name}", "annotations": {}}, "spec": spec, "status": {"phase": phase}}


class FakeApi:
    def __init__(self, claims: list[dict[str, Any]], classes: list[dict[str, Any]], pvs: list[dict[str, Any]]) -> None:
        self.claims, self.classes, self.pvs = claims, classes, pvs
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
        if method == "GET":
            items = {"/api/v1/persistentvolumeclaims": self.claims, "/apis/storage.k8s.io/v1/storageclasses": self.classes,
                     "/api/v1/persistentvolumes": self.pvs}[path]
            return 200, {"items": items}
        if method == "POST":
            self.created.append(body)
            return 201, body
        self.deleted.append(path.rsplit("/", 1)[1])
        return 200, {}


def storage_class(name: str, mode: str = "Immediate") -> dict[str, Any]:
    return {"metadata": {"name": name}, "volumeBindingMode": mode}


def test_pending_claims_of_existing_classes_get_a_prebound_volume_of_their_size() -> None:
    api = FakeApi([claim("registry", "astrago-nfs-csi"), claim("data", "standard"), claim("none", "")],
                  [storage_class("astrago-nfs-csi"), storage_class("standard")], [])
    assert volumes.sync_once(api, lambda _m: None)
    made = {v["spec"]["claimRef"]["name"]: v for v in api.created}
    assert set(made) == {"registry", "data", "none"}
    pv = made["registry"]
    assert pv["metadata"]["name"] == "pvc-uid-registry" and pv["spec"]["storageClassName"] == "astrago-nfs-csi"
    assert pv["spec"]["capacity"] == {"storage": "5Gi"} and pv["spec"]["claimRef"]["uid"] == "uid-registry"
    assert made["none"]["spec"]["storageClassName"] == ""


def test_claims_a_real_cluster_would_leave_pending_stay_pending() -> None:
    waiting = claim("wffc", "local")
    api = FakeApi([claim("missing", "no-such-class"), waiting, claim("bound", "standard", phase="Bound"),
                   claim("selective", "standard", selector={"matchLabels": {"a": "b"}})],
                  [storage_class("standard"), storage_class("local", "WaitForFirstConsumer")], [])
    volumes.sync_once(api, lambda _m: None)
    assert api.created == []
    waiting["metadata"]["annotations"][volumes.SELECTED_NODE] = "astrago-cpu-0"
    volumes.sync_once(api, lambda _m: None)
    assert [v["spec"]["claimRef"]["name"] for v in api.created] == ["wffc"]


def test_a_volume_is_made_once_and_released_ones_of_its_own_are_deleted() -> None:
    mine = {"metadata": {"name": "pvc-uid-registry", "labels": {volumes.MANAGED_LABEL: "true"}}, "status": {"phase": "Released"}}
    foreign = {"metadata": {"name": "other", "labels": {}}, "status": {"phase": "Released"}}
    api = FakeApi([claim("registry", "standard")], [storage_class("standard")], [mine, foreign])
    volumes.sync_once(api, lambda _m: None)
    assert api.created == [] and api.deleted == ["pvc-uid-registry"]


def test_the_default_class_is_marked_default() -> None:
    sc = volumes.storage_class_manifest()
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["metadata"]["name"] == volumes.DEFAULT_CLASS == "standard"
