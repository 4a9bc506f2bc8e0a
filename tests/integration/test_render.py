"""render.releases with the real pinned helm (no cluster: `helm template`): refusals name the release, the path and Helm's whole message; the cache holds no secret."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from model import charts as chartlib
from model.catalog import HelmOptions
from model.deployment import Deployment, ResolvedRelease
from model.errors import InputError
from model.graph import Plan
from render.releases import CACHE_DIR, Cluster, full_values, input_digest, render_releases
from tests.support.chart_repo import require_helm

SECRET = "render-Zq91-password"
OPTIONS = HelmOptions(timeout_s=60, wait=True, wait_for_jobs=True, atomic=True, cleanup_on_fail=True, max_history=10, drift_mode="enabled")


def _chart(root: Path, name: str, templates: dict[str, str], values: dict[str, Any], schema: dict[str, Any] | None = None) -> Path:
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": name, "version": "1.0.0"}))
    (chart / "values.yaml").write_text(yaml.safe_dump(values))
    if schema is not None:
        (chart / "values.schema.json").write_text(json.dumps(schema))
    for file, text in templates.items():
        (chart / "templates" / file).write_text(text)
    return chart


def _deployment(root: Path, chart: Path, values: dict[str, Any], secret_paths: dict[str, str] | None = None) -> Deployment:
    release = ResolvedRelease(
        name=chart.name, tier="infrastructure", namespace="ns", chart_path=chart.relative_to(root).as_posix(), chart_name=chart.name,
        chart_version="1.0.0", chart_digest=chartlib.chart_digest(chart), source="local", values=values, secret_paths=secret_paths or {},
        helm=OPTIONS, hooks=(), depends_on=(),
    )
    plan = Plan(tiers=(("infrastructure", (chart.name,)),), depends_on={chart.name: ()}, external={}, order=(chart.name,))
    return Deployment(plan=plan, releases={chart.name: release}, secret_keys=tuple(sorted(set((secret_paths or {}).values()))))


@pytest.fixture(autouse=True)
def _helm() -> None:
    require_helm()


def _refused(root: Path, deployment: Deployment) -> str:
    with pytest.raises(InputError) as error:
        render_releases(root, deployment, {}, Cluster(facts=None))
    assert not list((root / CACHE_DIR).glob("*.json")), "a refused render is not cached"
    return str(error.value)


def test_a_schema_violation_names_release_path_and_helms_whole_message(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"prometheusSpec": {"type": "object", "properties": {"retention": {"type": "string"}}}}}
    chart = _chart(tmp_path, "prom", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}, {"prometheusSpec": {"retention": "10d"}}, schema)
    message = _refused(tmp_path, _deployment(tmp_path, chart, {"prometheusSpec": {"retention": 30}}))
    print(message)
    assert message.startswith("release 'prom' (chart prom 1.0.0): Helm cannot render it at values path prometheusSpec.retention")
    assert "values don't meet the specifications of the schema" in message
    assert message.rstrip().endswith(("string", "string\"", "integer", "number")), "Helm's message is whole, not cut"


def test_a_template_error_names_the_values_path(tmp_path: Path) -> None:
    chart = _chart(tmp_path, "broken", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: {{ .Values.storage.size.gi | quote }}}\n"}, {})
    message = _refused(tmp_path, _deployment(tmp_path, chart, {"storage": {"class": "nfs"}}))
    print(message)
    assert "release 'broken'" in message and "templates/cm.yaml" in message
    assert "at values path storage.size.gi" in message


def test_a_missing_required_value_is_refused_with_the_charts_words(tmp_path: Path) -> None:
    template = ('apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n'
                'stringData: {p: {{ required "auth.adminPassword is required: set it or auth.existingSecret" .Values.auth.adminPassword }}}\n')
    chart = _chart(tmp_path, "kc", {"s.yaml": template}, {"auth": {}})
    message = _refused(tmp_path, _deployment(tmp_path, chart, {}))
    assert "auth.adminPassword is required: set it or auth.existingSecret" in message


def test_a_render_is_cached_without_any_secret_and_the_values_file_is_gone(tmp_path: Path) -> None:
    template = ('apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {p: {{ .Values.auth.password | quote }}}\n---\n'
                'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {url: "http://u:{{ .Values.auth.password }}@db", n: {{ .Values.n | quote }}}\n')
    chart = _chart(tmp_path, "app", {"all.yaml": template}, {"auth": {"password": ""}, "n": 1})
    deployment = _deployment(tmp_path, chart, {"n": 1}, {"auth.password": "appPassword"})
    before = set(Path(tempfile.gettempdir()).glob("astrago-values-*"))
    first = render_releases(tmp_path, deployment, {"appPassword": SECRET}, Cluster(facts=None))["app"]
    assert not first.cached and first.diff.counts() == (2, 0, 0), "nothing installed: every object is new"
    assert set(Path(tempfile.gettempdir()).glob("astrago-values-*")) == before, "the 0600 values file is removed after the call"
    again = render_releases(tmp_path, deployment, {"appPassword": SECRET}, Cluster(facts=None))["app"]
    assert again.cached and again.diff.added == first.diff.added
    stored = "".join(p.read_text() for p in (tmp_path / CACHE_DIR).rglob("*") if p.is_file())
    assert SECRET not in stored
    assert oct((tmp_path / CACHE_DIR / "key").stat().st_mode & 0o777) == "0o600"
    rotated = render_releases(tmp_path, deployment, {"appPassword": SECRET + "-rotated"}, Cluster(facts=None))["app"]
    assert not rotated.cached, "a changed secret is a changed input"
    release, values, key = deployment.releases["app"], full_values(deployment.releases["app"], {"appPassword": SECRET}), b"k" * 32
    installed = Cluster(facts=None, releases={("ns", "app"): (3, "deployed")})
    upgraded = Cluster(facts=None, releases={("ns", "app"): (4, "deployed")})
    assert input_digest(release, values, installed, key, "helm") != input_digest(release, values, upgraded, key, "helm"), \
        "a new Helm revision of the release (e.g. an upgrade behind the program's back) is a changed input"
