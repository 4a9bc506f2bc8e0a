"""model.valuekeys and the Helm option keys: a key the chart does not declare fails with the closest known one."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from model.catalog import parse_helm_options
from model.errors import InputError
from model.valuekeys import chart_key_tree, describe, unknown_keys


def _archive(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    sub = tmp_path / "grafana.tgz"
    _archive(sub, {"grafana/Chart.yaml": "name: grafana\nversion: 1.0.0\n", "grafana/values.yaml": yaml.safe_dump({"adminUser": "admin", "ini": {"server": {"port": 3000}}})})
    schema = {"type": "object", "properties": {"prometheus": {"type": "object", "properties": {"prometheusSpec": {"type": "object", "properties": {
        "retention": {"type": "string"}, "additionalScrapeConfigs": {"type": "array"}}}}},
        "extraLabels": {"type": "object", "additionalProperties": {"type": "string"}}}}
    files = {
        "kps/Chart.yaml": yaml.safe_dump({"name": "kps", "version": "61.9.0", "dependencies": [
            {"name": "grafana", "alias": "dashboards", "condition": "dashboards.enabled"}]}),
        "kps/values.yaml": yaml.safe_dump({"prometheus": {"prometheusSpec": {"replicas": 1, "storageSpec": {}, "nodeSelector": None}},
                                           "alertmanager": {"enabled": True, "config": {"global": {"resolve_timeout": "5m"}}}}),
        "kps/values.schema.json": json.dumps(schema),
    }
    target = tmp_path / "kps-61.9.0.tgz"
    _archive(target, files)
    # Subchart archives sit in charts/ of the parent.
    with tarfile.open(target, "r:gz") as source:
        members = [(m, source.extractfile(m).read()) for m in source.getmembers() if m.isfile()]  # type: ignore[union-attr]
    with tarfile.open(target, "w:gz") as out:
        for member, data in members:
            out.addfile(member, io.BytesIO(data))
        info = tarfile.TarInfo("kps/charts/grafana-1.0.0.tgz")
        info.size = sub.stat().st_size
        out.addfile(info, io.BytesIO(sub.read_bytes()))
    return target


def test_a_typo_names_the_closest_key(chart: Path) -> None:
    tree = chart_key_tree(chart)
    found = unknown_keys({"prometheus": {"prometheusSpec": {"retension": "30d"}}}, tree)
    assert found == [("prometheus.prometheusSpec.retension", "retention")]
    assert describe(*found[0]) == "prometheus.prometheusSpec.retension (retension: did you mean retention?)"


def test_values_schema_subcharts_aliases_conditions_and_free_form_maps_are_known(chart: Path) -> None:
    tree = chart_key_tree(chart)
    values = {
        "prometheus": {"prometheusSpec": {"replicas": 2, "retention": "10d", "additionalScrapeConfigs": [{"job_name": "x"}],
                                          "storageSpec": {"volumeClaimTemplate": {"spec": {"storageClassName": "nfs"}}},
                                          "nodeSelector": {"gpu": "true"}}},
        "alertmanager": {"config": {"global": {"resolve_timeout": "1m"}}},
        "extraLabels": {"team": "ai"},
        "dashboards": {"enabled": True, "adminUser": "root", "ini": {"server": {"port": 3001}}},
        "global": {"imageRegistry": "harbor.local"},
    }
    assert unknown_keys(values, tree) == []
    assert unknown_keys({"dashboards": {"adminUsr": "x"}, "grafana": {"adminUser": "x"}}, tree) == [
        ("dashboards.adminUsr", "adminUser"), ("grafana", None)], "a subchart's values live under its alias"


def test_an_allow_list_covers_keys_the_chart_reads_without_declaring(chart: Path) -> None:
    tree = chart_key_tree(chart)
    assert unknown_keys({"alertmanager": {"extraSecret": {"name": "x"}}}, tree, ["alertmanager.extraSecret"]) == []
    assert unknown_keys({"alertmanager": {"extraSecret": {"name": "x"}}}, tree) == [("alertmanager.extraSecret", None)]


def test_a_chart_folder_works_like_an_archive() -> None:
    root = Path(__file__).resolve().parents[2]
    tree = chart_key_tree(root / "charts" / "own" / "astrago")
    assert unknown_keys({"mariadb": {"persistense": {"enabled": False}}}, tree) == [("mariadb.persistense", "persistence")]


def test_unknown_helm_option_keys_fail_with_the_allowed_names() -> None:
    with pytest.raises(InputError) as error:
        parse_helm_options({}, {"timeut": "10s", "maxHistroy": 3, "upgrade": {"remediation": {"strategie": "none"}}}, "Pulumi.dev.yaml: astrago-deploy:releases.flux")
    problems = error.value.problems
    assert len(problems) == 3
    assert "helm.timeut is not a Helm option; did you mean timeout? allowed: ['driftDetection', 'install', 'maxHistory', 'timeout', 'upgrade']" in problems[0]
    assert "helm.maxHistroy is not a Helm option; did you mean maxHistory?" in problems[1]
    assert "helm.upgrade.remediation.strategie is not a Helm option; did you mean strategy? allowed: ['strategy']" in problems[2]
    assert parse_helm_options({}, {"timeout": "10s", "maxHistory": 3}, "x").timeout_s == 10
