"""From Helmfile's values to stack config: the pure parts of `make import-helmfile`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.catalog import load_catalog
from model.migration import infer_platform, overlay, platform_config, prune_defaults, shared, stack_document, take_secrets, without
from model.values import deep_merge

ROOT = Path(__file__).resolve().parents[2]


def test_platform_settings_are_read_back_through_the_catalog_mapping() -> None:
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    values: dict[str, dict[str, Any]] = {
        "harbor": {"externalURL": "http://10.1.2.3:30002", "expose": {"nodePort": {"ports": {"http": {"nodePort": 30002}}}},
                   "nginx": {"image": {"repository": "10.1.2.9:5000/goharbor/nginx-photon"}}},
        "nfs-provisioner": {"storageClass": {"name": "astrago-nfs-csi", "parameters": {"server": "10.1.2.2", "share": "/srv"}}},
        "keycloak": {"initContainers": [{"env": [{"name": "THEME_URL", "value": "http://fs:8080/keycloak-theme.jar"}]}]},
    }
    inferred = infer_platform(catalog, values)
    assert inferred.conflicts == []
    assert platform_config(inferred.settings) == {
        "cluster": {"externalIP": "10.1.2.3", "storageClass": "astrago-nfs-csi", "nfs": {"server": "10.1.2.2", "path": "/srv"}},
        "offline": {"registry": "10.1.2.9:5000", "fileServer": "http://fs:8080"},
    }


def test_a_template_fallback_reads_as_unset_and_disagreement_is_reported() -> None:
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    online = {"mpi-operator": {"image": {"registry": "docker.io"}}, "nfs-provisioner": {"image": {"baseRepo": "registry.k8s.io"}}}
    assert infer_platform(catalog, online).settings == {}
    mixed = {"mpi-operator": {"image": {"registry": "reg.a:5000"}}, "nfs-provisioner": {"image": {"baseRepo": "registry.k8s.io"}}}
    inferred = infer_platform(catalog, mixed)
    assert inferred.settings == {"imageRegistry": "reg.a:5000"}
    assert len(inferred.conflicts) == 1 and "imageRegistry" in inferred.conflicts[0]


def test_overlay_is_the_smallest_override() -> None:
    base = {"a": {"b": 1, "c": [1]}, "gone": 1, "same": True}
    target = {"a": {"b": 2, "c": [1]}, "new": {"x": 1}, "same": True}
    override = overlay(base, target)
    assert override == {"a": {"b": 2}, "new": {"x": 1}, "gone": None}
    assert deep_merge(base, override) == target
    assert overlay({"n": 1}, {"n": True}) == {"n": True}, "true is not 1"


def test_leaves_that_restate_a_chart_default_are_left_out() -> None:
    override = {"global": {"imageRegistry": ""}, "replicas": 2}
    assert prune_defaults(override, {}, {"global": {"imageRegistry": ""}, "replicas": 1}) == {"replicas": 2}


def test_secrets_and_credential_looking_values_are_taken_out() -> None:
    values = {"auth": {"adminUser": "admin", "adminPassword": "pw-1234"}, "postgresql": {"auth": {"password": "pg-5678", "existingSecret": "x"}}}
    clean, found, loose = take_secrets(values, {"auth.adminPassword": "keycloakAdminPassword"})
    assert found == {"keycloakAdminPassword": "auth.adminPassword"}
    assert loose == ["postgresql.auth.password"]
    assert "pw-1234" not in str(clean) and "pg-5678" not in str(clean)
    assert clean == {"auth": {"adminUser": "admin"}, "postgresql": {"auth": {"existingSecret": "x"}}}


def test_environments_share_a_parent_and_keep_their_own() -> None:
    a = {"cluster": {"externalIP": "1", "storageClass": "nfs"}, "releases": {"x": {"values": {"k": 1, "gone": None}}}}
    b = {"cluster": {"externalIP": "2", "storageClass": "nfs"}, "releases": {"x": {"values": {"k": 1, "gone": None}}}}
    common = shared([a, b])
    assert common == {"cluster": {"storageClass": "nfs"}, "releases": {"x": {"values": {"k": 1}}}}
    assert without(a, common) == {"cluster": {"externalIP": "1"}, "releases": {"x": {"values": {"gone": None}}}}


def test_stack_document_keeps_what_pulumi_owns() -> None:
    existing = {"encryptionsalt": "v1:salt", "config": {"astrago-deploy:harborAdminPassword": {"secure": "v1:abc"},
                                                         "astrago-deploy:cluster": {"externalIP": "old"}, "other:key": 1}}
    document = stack_document(existing, {"cluster": {"externalIP": "new"}, "releases": {}}, "helmfile")
    assert document == {"encryptionsalt": "v1:salt", "config": {
        "astrago-deploy:cluster": {"externalIP": "new"}, "astrago-deploy:harborAdminPassword": {"secure": "v1:abc"},
        "astrago-deploy:inherits": "helmfile", "other:key": 1}}
