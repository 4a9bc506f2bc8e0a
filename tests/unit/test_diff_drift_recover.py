"""The plain parts of `make diff`, `make drift` and `make recover`: masking, comparing, reading events, choosing revisions."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from commands.drift import changes, namespace_changes, release_changes, steps
from commands.recover import Lock, rollback_target, stack_locks
from model.manifest import mask_object, parse_manifest
from model.structdiff import diff, diff_objects
from model.values import MASK

SECRET = "unit-db-Zq83-s3cr3t"

LIVE = f"""
---
apiVersion: v1
kind: Secret
metadata: {{name: app-credentials}}
data: {{password: {base64.b64encode(SECRET.encode()).decode()}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-values}}
data:
  values: '{json.dumps({"db": {"password": SECRET}})}'
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: main
        image: app:1.0
        resources: {{limits: {{cpu: 100m}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: old-service}}
"""

DESIRED = f"""
apiVersion: v1
kind: Secret
metadata: {{name: app-credentials}}
data: {{password: {base64.b64encode(MASK.encode()).decode()}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-values}}
data:
  values: '{json.dumps({"db": {"password": MASK}})}'
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: main
        image: app:1.0
        resources: {{limits: {{cpu: 200m}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: new-config, namespace: elsewhere}}
"""


def test_objects_are_keyed_by_api_kind_namespace_and_name() -> None:
    objects = parse_manifest(DESIRED)
    assert ("v1", "ConfigMap", "elsewhere", "new-config") in objects
    assert ("apps/v1", "Deployment", "", "app") in objects


def test_secret_data_and_known_secret_values_are_masked_everywhere() -> None:
    live = parse_manifest(LIVE)
    secret = mask_object(live[("v1", "Secret", "", "app-credentials")], [SECRET])
    assert secret["data"] == {"password": MASK}
    config = mask_object(live[("v1", "ConfigMap", "", "app-values")], [SECRET])
    assert SECRET not in json.dumps(config) and MASK in config["data"]["values"]


def test_only_real_changes_are_reported_and_no_secret_is_printed() -> None:
    result = diff_objects(parse_manifest(LIVE), parse_manifest(DESIRED), [SECRET])
    assert result.added == [("v1", "ConfigMap", "elsewhere", "new-config")]
    assert result.removed == [("v1", "Service", "", "old-service")]
    # The secret differs only by its (masked) value, the ConfigMap only by the masked secret: neither is a change.
    assert list(result.changed) == [("apps/v1", "Deployment", "", "app")]
    [change] = result.changed[("apps/v1", "Deployment", "", "app")]
    assert change.text() == 'spec.template.spec.containers[0].resources.limits.cpu: "100m" -> "200m"'


def test_a_diff_shows_the_changed_leaves_only() -> None:
    old = {"spec": {f"key{i:02d}": i for i in range(40)}}
    new = {"spec": {**old["spec"], "key20": "changed"}}
    assert [c.text() for c in diff(old, new)] == ['spec.key20: 20 -> "changed"']


def test_drift_values_show_old_and_new_but_never_a_secret() -> None:
    old = {"core": {"replicas": 1}, "mariadb": {"password": MASK}}
    new = {"core": {"replicas": 2, "extra": "x"}, "mariadb": {"password": "leaked-if-printed"}}
    lines = changes(old, new, "values", ("values.mariadb.password",))
    assert "values.core.replicas: 1 -> 2" in lines
    assert 'values.core.extra: (absent) -> "x"' in lines
    assert f"values.mariadb.password: {MASK} (changed)" in lines
    assert not any("leaked-if-printed" in line for line in lines)


def _event(kind: str, op: str, old: dict[str, Any], new: dict[str, Any] | None, typ: str = "kubernetes:helm.sh/v3:Release") -> dict[str, Any]:
    meta: dict[str, Any] = {"op": op, "urn": "urn:pulumi:s::p::t::astrago-release", "type": typ, "old": {"outputs": old}}
    if new is not None:
        meta["new"] = {"outputs": new}
    return {kind: {"metadata": meta}}


def test_the_refresh_result_of_a_helm_release_names_revision_and_values() -> None:
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "[secret]"}
    old = {"name": "astrago", "status": {"revision": 1, "status": "deployed"}, "values": {"core": {"pw": secret}}}
    new = {"name": "astrago", "status": {"revision": 2, "status": "deployed"}, "values": {"core": {"pw": secret, "replicas": 2}}}
    found = steps([_event("resourcePreEvent", "refresh", old, old), _event("resOutputsEvent", "same", old, new)])
    [step] = found.values()
    lines = release_changes(step, ("core.pw",))
    assert lines[0].startswith("Helm revision: 1 -> 2")
    assert "values.core.replicas: (absent) -> 2" in lines and len(lines) == 2


def test_a_release_the_refresh_found_gone_is_reported() -> None:
    [step] = steps([_event("resOutputsEvent", "delete", {"name": "astrago"}, None)]).values()
    assert step.new is None
    assert "gone" in release_changes(step, ())[0]


def test_namespace_drift_ignores_what_the_provider_writes() -> None:
    old = {"metadata": {"name": "astrago", "labels": {"app.kubernetes.io/managed-by": "astrago-deploy"}, "annotations": {"pulumi.com/x": "1"}}}
    new = {"metadata": {"name": "astrago", "labels": {}, "annotations": {"pulumi.com/x": "2"}}}
    [step] = steps([_event("resOutputsEvent", "same", old, new, "kubernetes:core/v1:Namespace")]).values()
    assert namespace_changes(step) == ['metadata.labels["app.kubernetes.io/managed-by"]: "astrago-deploy" -> (absent)']


def test_a_pending_release_goes_back_to_its_newest_deployed_revision_or_is_uninstalled() -> None:
    assert rollback_target([(1, "superseded"), (2, "deployed"), (3, "pending-upgrade")], 3) == 2
    assert rollback_target([(1, "superseded"), (2, "failed"), (3, "pending-upgrade")], 3) == 1
    assert rollback_target([(1, "pending-install")], 1) is None
    assert rollback_target([(1, "uninstalled"), (2, "pending-install")], 2) is None


def test_locks_of_a_file_backend_are_read_with_their_holder(tmp_path: Path) -> None:
    folder = tmp_path / ".pulumi" / "locks" / "organization" / "astrago-deploy" / "dev"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"pid": 999999, "username": "ci", "hostname": "elsewhere", "timestamp": "t"}))
    (folder / "a.json.attrs").write_text("{}")
    [lock] = stack_locks(f"file://{tmp_path}", "dev") or []
    assert (lock.pid, lock.host, lock.user) == (999999, "elsewhere", "ci")
    assert lock.holder_alive() is None, "another machine's process cannot be checked"
    assert stack_locks("s3://bucket", "dev") is None
    here = Lock(path=folder / "a.json", pid=2**22 + 12345, host=__import__("socket").gethostname(), user="u", since="t")
    assert here.holder_alive() is False
