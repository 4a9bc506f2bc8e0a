"""Synthetic catalogs of N releases for the scale bench, written into a project copy.

`write_synthetic` promises a project copy whose catalog/releases.yaml holds
`count` releases of one small stand-in chart (tests/support/chart_repo.py's: a
Deployment and a ConfigMap, so installs wait for readiness), spread evenly
over the real catalog's four tiers with its Helm defaults, shaped like the real
catalog:

- one namespace per release;
- one release in three uses the chart as a local folder (charts/own/bench-standin,
  digested by the program), the others the same chart as a locked archive
  (declared in charts/external.yaml; `tests.support.engine.sync_standins` fetches it);
- the first release of each tier offers an endpoint that every sixth release of
  that tier needs and injects into its values;
- every tenth release reads a secret (mariadbPassword);
- values/<release>.yaml holds a few plain values per release.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support.chart_repo import write_standin

CHART = "bench-standin"
CHART_VERSION = "1.0.0"


def synthetic_catalog(count: int, real: dict[str, Any]) -> dict[str, Any]:
    """Catalog data for `count` releases with the real catalog's tiers and Helm defaults."""
    tiers: list[str] = real["tiers"]
    releases: list[dict[str, Any]] = []
    first_of_tier: dict[str, str] = {}
    for index in range(count):
        tier = tiers[index * len(tiers) // count]
        name = f"bench-{index:03d}"
        release: dict[str, Any] = {
            "name": name,
            "tier": tier,
            "namespace": name,
            "chart": {"local": CHART} if index % 3 == 0 else {"external": CHART},
        }
        if tier not in first_of_tier:
            first_of_tier[tier] = name
            release["endpoint"] = {"url": f"http://{name}.{name}.svc:80"}
        elif index % 6 == 0:
            release["needs"] = [{"release": first_of_tier[tier], "inject": {"upstream.url": "url"}}]
        if index % 10 == 0:
            release["secrets"] = {"auth.password": "mariadbPassword"}
        releases.append(release)
    return {"tiers": tiers, "defaults": real["defaults"], "releases": releases}


def write_synthetic(project: Path, count: int) -> list[str]:
    """Replace the project copy's catalog, values and external chart list; return the release names."""
    real = yaml.safe_load((project / "catalog" / "releases.yaml").read_text())
    data = synthetic_catalog(count, real)
    (project / "catalog" / "releases.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.rmtree(project / "values")
    (project / "values").mkdir()
    for release in data["releases"]:
        values = {"replicas": 1, "config": {"release": release["name"], "tier": release["tier"], "logLevel": "info"}}
        (project / "values" / f"{release['name']}.yaml").write_text(yaml.safe_dump(values))
    write_standin(project / "charts" / "own", CHART, CHART_VERSION)
    # Only the synthetic chart is declared: nothing else needs an archive.
    (project / "charts" / "external.yaml").write_text(yaml.safe_dump({"charts": [{"name": CHART, "repository": "http://127.0.0.1/", "version": CHART_VERSION}]}))
    return [r["name"] for r in data["releases"]]
