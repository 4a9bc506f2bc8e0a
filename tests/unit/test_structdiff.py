"""model.structdiff: leaf changes with paths, lists by index, secrets masked; one engine for diff, drift and env-diff."""

from __future__ import annotations

import base64
from typing import Any

from model.manifest import ObjectKey, key_text
from model.structdiff import ABSENT, Change, diff, diff_objects, join
from model.values import MASK


def test_leaves_of_maps_and_lists_have_paths_with_indexes() -> None:
    before = {"rules": [{"verbs": ["get"]}, {"verbs": ["list"]}, {"verbs": ["watch"]}, {"verbs": ["get", "list"]}]}
    after = {"rules": [{"verbs": ["get"]}, {"verbs": ["list"]}, {"verbs": ["watch"]}, {"verbs": ["get", "watch"]}]}
    assert diff(before, after) == [Change("rules[3].verbs[1]", "list", "watch")]
    assert diff(before, after)[0].text() == 'rules[3].verbs[1]: "list" -> "watch"'


def test_added_and_removed_keys_and_items_are_absent_on_one_side() -> None:
    changes = diff({"a": 1, "l": [1, 2]}, {"b": {"c": True}, "l": [1]})
    assert changes == [Change("a", 1, ABSENT), Change("b", ABSENT, {"c": True}), Change("l[1]", 2, ABSENT)]
    assert [c.kind for c in changes] == ["removed", "added", "removed"]
    assert changes[0].text() == "a: 1 -> (absent)"


def test_equal_structures_have_no_change_but_true_is_not_one() -> None:
    assert diff({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) == []
    assert diff({"enabled": 1}, {"enabled": True}) == [Change("enabled", 1, True)]


def test_keys_with_dots_are_quoted_in_paths() -> None:
    assert join("metadata.labels", "app.kubernetes.io/name") == 'metadata.labels["app.kubernetes.io/name"]'
    changes = diff({"metadata": {"labels": {"app.kubernetes.io/name": "a"}}}, {"metadata": {"labels": {"app.kubernetes.io/name": "b"}}})
    assert changes[0].path == 'metadata.labels["app.kubernetes.io/name"]'


def test_secret_paths_show_only_presence_and_secrets_are_scrubbed() -> None:
    changes = diff({"auth": {"password": "old-pass-1"}, "url": "http://u:old-pass-1@h"}, {"auth": {"password": "new-pass-2"}, "url": "http://u:new-pass-2@h"},
                   secret_paths=["auth.password"], secrets=["old-pass-1", "new-pass-2"])
    assert changes == [Change("auth.password", MASK, MASK), Change("url", f"http://u:{MASK}@h", f"http://u:{MASK}@h")]
    text = " ".join(c.text() for c in changes)
    assert "old-pass-1" not in text and "new-pass-2" not in text
    added = diff({}, {"auth": {"password": "x-secret-9"}}, secret_paths=["auth"])
    assert added == [Change("auth", ABSENT, MASK)], "a map on one side only is one leaf"


def test_objects_added_removed_changed_and_secret_data_masked() -> None:
    cm = ("v1", "ConfigMap", "", "cfg")
    secret = ("v1", "Secret", "", "creds")
    role = ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader")
    svc = ("v1", "Service", "kube-system", "kubelet")
    before: dict[ObjectKey, dict[str, Any]] = {cm: {"kind": "ConfigMap", "data": {"a": "1"}},
              secret: {"kind": "Secret", "data": {"p": base64.b64encode(b"old").decode()}},
              role: {"kind": "ClusterRole", "rules": [{"verbs": ["get"]}]}}
    after: dict[ObjectKey, dict[str, Any]] = {cm: {"kind": "ConfigMap", "data": {"a": "2"}},
             secret: {"kind": "Secret", "data": {"p": base64.b64encode(b"new").decode()}},
             svc: {"kind": "Service"}}
    result = diff_objects(before, after)
    assert result.added == [svc] and result.removed == [role]
    assert result.changed == {cm: [Change("data.a", "1", "2")]}, "a Secret's data never differs in a diff"
    assert result.counts() == (1, 1, 1)
    assert key_text(role, "prometheus") == "rbac.authorization.k8s.io/v1 ClusterRole reader", "cluster-scoped: no namespace"
    assert key_text(cm, "prometheus") == "v1 ConfigMap prometheus/cfg"
    assert key_text(svc, "prometheus") == "v1 Service kube-system/kubelet"
