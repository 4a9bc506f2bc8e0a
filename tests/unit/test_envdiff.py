"""`commands.envdiff`: what resolves differently between two stacks, from the stack files alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from commands.envdiff import diff_stacks, main

ROOT = Path(__file__).resolve().parents[2]


def test_dev_and_prod_differ_in_retention_harbor_and_image_tags(standin_charts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "prod", "--charts-dir", str(standin_charts)]) == 1
    out = capsys.readouterr().out
    assert "enabled only in prod: harbor" in out
    assert "enabled only in dev" not in out
    assert 'values.loki.config.table_manager.retention_period  dev: "168h"  prod: "2160h"' in out
    assert 'values.core.image.tag ' in out and 'dev: "core-dev-3f9a1c2"  prod: "core-prod-8d2e4b1"' in out
    assert 'values.experiment.enabled' in out and "prod: (absent)" in out, "a value set in one stack only shows as absent in the other"
    assert "values.mariadb.connMaxLifetime   dev: 60  prod: 600" in out


def test_json_lists_every_difference_per_release(standin_charts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "prod", "--charts-dir", str(standin_charts), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] is False
    assert data["onlyIn"] == {"dev": [], "prod": ["harbor"]}
    loki = {c["path"]: (c["dev"], c["prod"]) for c in data["releases"]["loki-stack"]}
    assert loki["values.loki.config.table_manager.retention_period"] == ('"168h"', '"2160h"')
    assert loki["values.loki.persistence.size"] == ('"20Gi"', '"100Gi"')
    nfs = {c["path"]: (c["dev"], c["prod"]) for c in data["releases"]["nfs-provisioner"]}
    assert nfs["values.storageClass.parameters.server"] == ('"10.61.3.2"', '"10.61.5.2"'), "platform settings count as values"
    # Releases configured the same way in both stacks are not listed.
    assert "keycloak-addons" not in data["releases"] and "flux" not in data["releases"]


def test_secrets_are_masked_and_never_reported(standin_charts: Path) -> None:
    diff = diff_stacks("dev", "prod", ROOT, str(standin_charts))
    paths = [c.path for c in diff.releases["astrago"]]
    assert not any("password" in p.lower() or "secret" in p.lower() for p in paths), paths
    shown = [v for changes in diff.releases.values() for c in changes for v in (c.a, c.b)]
    assert all("[secret]" not in v for v in shown)


def test_a_stack_compared_with_itself_is_identical(standin_charts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prod", "prod", "--charts-dir", str(standin_charts)]) == 0
    assert capsys.readouterr().out == "prod and prod resolve identically\n"


def test_a_customer_stack_differs_from_prod_only_where_it_says(tmp_path: Path, standin_charts: Path) -> None:
    for part in ("catalog", "values", "charts/own"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    (tmp_path / "Pulumi.site-a.yaml").write_text(yaml.safe_dump({"config": {
        "astrago-deploy:inherits": "prod",
        "astrago-deploy:releases": {"astrago": {"values": {"core": {"image": {"tag": "core-site-a-1"}}}}, "mpi-operator": {"enabled": False}},
    }}))
    diff = diff_stacks("prod", "site-a", tmp_path, str(standin_charts))
    assert diff.only_a == ["mpi-operator"] and diff.only_b == []
    assert {n: [(c.path, c.a, c.b) for c in cs] for n, cs in diff.releases.items()} == {
        "astrago": [("values.core.image.tag", '"core-prod-8d2e4b1"', '"core-site-a-1"')],
    }
    only_astrago = diff_stacks("prod", "site-a", tmp_path, str(standin_charts), only="astrago")
    assert only_astrago.only_a == [] and list(only_astrago.releases) == ["astrago"]


def test_unknown_stack_fails_with_the_known_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.nope.yaml: no such stack file" in err and "'prod'" in err


def test_stacks_compare_without_synced_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "charts"
    empty.mkdir()
    shutil.copy(ROOT / "charts" / "external.yaml", empty / "external.yaml")
    assert main(["dev", "prod", "--charts-dir", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "harbor" in out and "2160h" in out
