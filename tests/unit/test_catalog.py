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
    ({"tier": "platform"}, "release 'astrago': tier 'platform' is not one of"),
    ({"chart": "astrago"}, "releases[astrago].chart: must be a map, not 'astrago'"),
    ({"chart": {"local": "astrago", "external": "astrago"}}, "releases[astrago].chart: must be {local: <dir under charts/own>} or {external: <name in charts/external.yaml>}"),
    ({"helm": {"timeout": "ten minutes"}}, "releases[astrago].helm.timeout: 'ten minutes' is not a duration such as 600s, 10m or 1h30m"),
    ({"helm": {"atomic": "yes"}}, "releases[astrago].helm.atomic: must be true or false, not 'yes'"),
    ({"helm": {"drift": "on"}}, "releases[astrago].helm.drift: 'on' is not allowed; choose one of fail, warn, ignore"),
    ({"helm": {"maxHistory": 1}}, "releases[astrago].helm.maxHistory: 1 is below the minimum 2"),
    ({"helm": {"upgrade": {"remediation": {"strategy": "none"}}}}, "releases[astrago].helm.upgrade: Flux's upgrade.* fields were replaced by Helm's flags"),
    ({"helm": {"driftDetection": {"mode": "warn"}}}, "releases[astrago].helm.driftDetection: driftDetection.mode (a Flux field"),
    ({"helm": {"wait": False}}, "release 'astrago': helm.atomic is true and helm.wait false, but Helm's --atomic always waits"),
    ({"settings": {"a.b": "clusterName"}}, "release 'astrago': settings.a.b names 'clusterName'; allowed platform settings: ['storageClass'"),
    ({"colour": "blue"}, "releases[astrago].colour: unknown key. Allowed here: chart, enabled, endpoint"),
    ({"namespace": "Astrago"}, "releases[astrago].namespace: must be a DNS label (lower-case letters, digits, '-', at most 53 characters), not 'Astrago'"),
    ({"hooks": [{"name": "x", "when": "postInstall"}]}, "releases[astrago].hooks[x].when: 'postInstall' is not allowed; choose one of preInstall, preDelete"),
    ({"hooks": [{"name": "x", "when": "preInstall"}]}, "releases[astrago].hooks[x]: missing key check"),
    ({"needs": [{"name": "keycloak"}]}, "releases[astrago].needs[keycloak]: must be a release name or {release: <name>, inject: {<values.path>: <endpoint key>}}, not a map"),
])
def test_bad_release_entry_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_catalog(_with(change), "catalog/releases.yaml")
    assert message in str(caught.value), str(caught.value)


def test_duplicate_release_is_refused() -> None:
    data = _with({})
    data["releases"].append(dict(data["releases"][0]))
    with pytest.raises(InputError, match="declared twice"):
        parse_catalog(data, "catalog/releases.yaml")
