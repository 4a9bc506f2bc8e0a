"""Catalog validation: every bad entry is named with what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from model.catalog import load_catalog, parse_catalog
from model.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _with(change: dict[str, Any], name: str = "astrago") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "catalog/releases.yaml").read_text())
    for release in data["releases"]:
        if release["name"] == name:
            release.update(change)
    return data


def test_the_catalog_has_twelve_releases_in_four_tiers() -> None:
    catalog = load_catalog(ROOT / "catalog/releases.yaml")
    assert catalog.tiers == ("infrastructure", "monitoring", "security", "applications")
    assert len(catalog.releases) == 12


def test_helm_defaults_are_the_teams_plus_remediation() -> None:
    helm = load_catalog(ROOT / "catalog/releases.yaml").by_name()["loki-stack"].helm
    assert (helm.timeout_s, helm.wait, helm.wait_for_jobs, helm.atomic, helm.cleanup_on_fail) == (600, True, True, True, True)


@pytest.mark.parametrize(("change", "message"), [
    ({"tier": "platform"}, "tier 'platform' is not one of"),
    ({"chart": "astrago"}, "`chart` must be {local:"),
    ({"helm": {"timeout": "ten minutes"}}, "helm.timeout 'ten minutes' must be a duration"),
    ({"helm": {"upgrade": {"remediation": {"strategy": "retry"}}}}, "allowed: ['rollback', 'none']"),
    ({"helm": {"driftDetection": {"mode": "on"}}}, "allowed: ['enabled', 'warn', 'disabled']"),
    ({"helm": {"maxHistory": 1}}, "maxHistory must be a whole number >= 2"),
    ({"settings": {"a.b": "clusterName"}}, "allowed platform settings"),
    ({"colour": "blue"}, "unknown key(s) ['colour']"),
    ({"namespace": "Astrago"}, "`namespace` must be a DNS label"),
    ({"hooks": [{"name": "x", "when": "postInstall"}]}, "allowed: ['preInstall', 'preDelete']"),
])
def test_bad_release_entry_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_catalog(_with(change), "catalog/releases.yaml")
    assert "release 'astrago'" in str(caught.value) and message in str(caught.value)


def test_duplicate_release_is_refused() -> None:
    data = _with({})
    data["releases"].append(dict(data["releases"][0]))
    with pytest.raises(InputError, match="declared twice"):
        parse_catalog(data, "catalog/releases.yaml")
