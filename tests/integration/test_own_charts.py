"""The charts this project owns: lint and render with every stack's values; schemas refuse bad values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from model.deployment import resolve_stack
from tests.support.chart_repo import require_helm
from tests.support.standin_charts import build_charts_dir

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("local", "dev", "stage", "prod")


@pytest.fixture(scope="module")
def charts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_charts_dir(tmp_path_factory.mktemp("charts"))


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(require_helm()), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stack", STACKS)
def test_every_own_chart_lints_and_renders_with_the_stacks_values(stack: str, charts_dir: Path, tmp_path: Path) -> None:
    deployment = resolve_stack(stack, ROOT, charts_dir=str(charts_dir))
    own = [r for r in deployment.releases.values() if r.source == "local"]
    assert own, f"stack {stack} deploys none of the repository's charts"
    for release in own:
        values = tmp_path / f"{release.name}.yaml"
        values.write_text(yaml.safe_dump(deployment.masked_values(release.name)))
        chart = str(ROOT / release.chart_path)
        lint = _helm("lint", chart, "-f", str(values), "--namespace", release.namespace)
        assert lint.returncode == 0, f"{stack}/{release.name}: helm lint failed:\n{lint.stdout}{lint.stderr}"
        rendered = _helm("template", release.name, chart, "-f", str(values), "--namespace", release.namespace)
        assert rendered.returncode == 0, f"{stack}/{release.name}: helm template failed:\n{rendered.stderr}"
        kinds = [d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d]
        assert kinds, f"{stack}/{release.name} renders nothing"


@pytest.mark.parametrize(("chart", "values", "complaint"), [
    ("astrago", {"proxy": {"service": {"nodePort": 80}}}, "nodePort"),
    ("astrago", {"core": {"image": {"tag": ""}}}, "tag"),
    ("astrago", {"mariadb": {"persistence": {"size": "lots"}}}, "size"),
    ("gpu-process-exporter", {"schedule": "every minute"}, "schedule"),
    ("gpu-operator-addons", {"devicePlugin": {"timeSlicingReplicas": 0}}, "timeSlicingReplicas"),
    ("keycloak-addons", {"realm": {"name": "Astrago Realm"}}, "name"),
])
def test_the_schema_refuses_bad_values(chart: str, values: dict[str, object], complaint: str, tmp_path: Path) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    rendered = _helm("template", "t", str(ROOT / "charts/own" / chart), "-f", str(file))
    assert rendered.returncode != 0, f"{chart} accepted {values}"
    assert "values don't meet the specifications of the schema" in rendered.stderr and complaint in rendered.stderr, rendered.stderr
