"""Rendered manifests as objects: keys, masking of secrets (plain functions).

Helm manifests become objects keyed by apiVersion, kind, namespace and name;
Secret data and the secret values a release was installed with are masked
before anything is compared or printed.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from model.values import MASK

# Shorter strings would mask unrelated text; secrets this short are refused by no one, so say so where it matters.
MIN_SECRET_LEN = 4
MASK_B64 = base64.b64encode(MASK.encode()).decode()

ObjectKey = tuple[str, str, str, str]
"""apiVersion, kind, namespace ('' when the manifest names none), name."""

# Kinds Kubernetes serves without a namespace (`kubectl api-resources --namespaced=false`, built-in groups).
CLUSTER_SCOPED_KINDS = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "ComponentStatus", "CSIDriver", "CSINode",
    "CustomResourceDefinition", "FlowSchema", "IngressClass", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PriorityClass", "PriorityLevelConfiguration",
    "RuntimeClass", "StorageClass", "StorageVersionMigration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment", "VolumeAttributesClass", "DeviceClass", "ResourceSlice",
})


def parse_manifest(text: str) -> dict[ObjectKey, dict[str, Any]]:
    """The objects of a YAML stream by key; `List` objects are opened; empty documents skipped."""
    objects: dict[ObjectKey, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(text):
        items = doc.get("items") if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") else [doc]
        for item in items or []:
            if not isinstance(item, dict) or "kind" not in item:
                continue
            objects[object_key(item)] = item
    return objects


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def cluster_scoped_kinds(objects: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The built-in cluster-scoped kinds and those of the CustomResourceDefinitions among objects with `scope: Cluster`."""
    custom = {str(((o.get("spec") or {}).get("names") or {}).get("kind", "")) for o in objects
              if o.get("kind") == "CustomResourceDefinition" and (o.get("spec") or {}).get("scope") == "Cluster"}
    return CLUSTER_SCOPED_KINDS | {k for k in custom if k}


def object_namespace(key: ObjectKey, default_namespace: str, cluster_kinds: frozenset[str] = CLUSTER_SCOPED_KINDS) -> str:
    """Where the object lives: '' for a cluster-scoped kind, else its own namespace or the release's."""
    if key[1] in cluster_kinds:
        return ""
    return key[2] or default_namespace


def key_text(key: ObjectKey, default_namespace: str = "", cluster_kinds: frozenset[str] = CLUSTER_SCOPED_KINDS) -> str:
    """`apps/v1 Deployment astrago/astrago-core`; a cluster-scoped object has no namespace, one without gets the release's."""
    api, kind, _, name = key
    namespace = object_namespace(key, default_namespace, cluster_kinds)
    return f"{api} {kind} {namespace + '/' if namespace else ''}{name}"


def mask_object(obj: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A copy with every Secret data/stringData value masked and every known secret value replaced by the mask."""
    masked = copy.deepcopy(dict(obj))
    if masked.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(masked.get(field), dict):
                masked[field] = dict.fromkeys(masked[field], MASK)
    scrubbed: dict[str, Any] = scrub(masked, secrets)
    return scrubbed


def scrub(node: Any, secrets: Iterable[str]) -> Any:
    """node with each secret (as is, base64 and JSON-escaped) replaced by the mask in every string."""
    forms: list[tuple[str, str]] = []
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) < MIN_SECRET_LEN:
            continue
        forms.append((secret, MASK))
        forms.append((base64.b64encode(secret.encode()).decode(), MASK_B64))
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret:
            forms.append((escaped, MASK))
    if not forms:
        return node
    return _scrub(node, forms)


def _scrub(node: Any, forms: list[tuple[str, str]]) -> Any:
    if isinstance(node, str):
        for secret, mask in forms:
            node = node.replace(secret, mask)
        return node
    if isinstance(node, dict):
        return {_scrub(k, forms): _scrub(v, forms) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v, forms) for v in node]
    return node
