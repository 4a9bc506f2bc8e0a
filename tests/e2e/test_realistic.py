"""The realistic stand-ins (tests/realistic_charts) deployed on the e2e cluster: preview, diff and drift tell the truth.

One deployment of the `stage` stack's settings with the realistic charts
(persistence off: the e2e cluster has no volumes yet), then in order: a
second preview is clean, `make diff` exits 0 (generated secrets, lookup
results and Kind-level API versions come from the cluster), `make drift`
exits 0, a Service deleted in kube-system is drift of prometheus, and one
changed value shows exactly its objects. Timings of the preview with a cold
and a warm render cache are printed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest
from pulumi import automation as auto

from tests.e2e.full_catalog import Catalog, command
from tests.support.engine import KWOK_VALUES, SECRETS, E2EStack, copy_project, dispose, new_stack
from tests.support.standin_charts import build_realistic_charts_dir

NO_VOLUMES = {
    **KWOK_VALUES,
    "harbor": {"values": {"persistence": {"enabled": False}}},
    "loki-stack": {"values": {"loki": {"persistence": {"enabled": False}}}},
}
# The realistic keycloak stand-in does not install yet (its keycloak-env-vars ConfigMap has a number,
# KEYCLOAK_DATABASE_PORT, where the API wants a string): an external Keycloak stands in for it.
EXTERNAL_KEYCLOAK = {"keycloak": {"url": "http://keycloak.example.invalid"}}
RELEASES = 11


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory, engine_env: dict[str, str]) -> Iterator[Catalog]:
    project = copy_project(tmp_path_factory.mktemp("realistic") / "project")
    shutil.rmtree(project / "charts" / "external", ignore_errors=True)
    build_realistic_charts_dir(project / "charts")
    stack = new_stack(project, engine_env, "stage", {"releases": NO_VOLUMES, "externals": EXTERNAL_KEYCLOAK}, prefix="e2e-real")
    try:
        started = time.monotonic()
        result = stack.stack.up(message="e2e: realistic catalog", color="never", on_output=print)
        assert result.summary.result == "succeeded", result.stderr
        yield Catalog(stack=stack, up_s=time.monotonic() - started)
    finally:
        dispose(stack)


def _preview(stack: E2EStack) -> tuple[auto.PreviewResult, float]:
    started = time.monotonic()
    result = stack.stack.preview(color="never", diff=False)
    return result, time.monotonic() - started


def test_a_second_preview_is_clean_and_a_warm_cache_costs_little(realistic: Catalog) -> None:
    stack = realistic.stack
    # The program then says how long its render took and how many releases came from the cache.
    saved = stack.stack.workspace.env_vars
    stack.stack.workspace.env_vars = {**saved, "ASTRAGO_RENDER_TIMING": "1"}
    cold, cold_s = _preview(stack)  # the revisions changed with `up`: every release renders again
    assert set(cold.change_summary or {}) <= {"same"}, cold.change_summary
    assert "to change" not in cold.stdout and "to add" not in cold.stdout, "no release shows object changes"
    warm, warm_s = _preview(stack)
    assert set(warm.change_summary or {}) <= {"same"}, warm.change_summary
    # The diagnostics list the line once more per resource event; the summary at the end has it alone.
    timing = [line.strip() for result in (cold, warm) for line in result.stdout.splitlines() if line.strip().startswith("render:")]
    print(f"\nrealistic catalog: up {realistic.up_s:.1f}s; preview after up (render cold) {cold_s:.1f}s; preview again (render cache warm) {warm_s:.1f}s")
    print("\n".join(timing))
    assert len(timing) == 2 and f"{RELEASES} from the cache" in timing[1], timing
    stack.stack.workspace.env_vars = saved


def test_make_diff_reports_nothing_right_after_up(realistic: Catalog) -> None:
    run = command("diff", realistic.stack)
    print(f"\nmake diff, realistic catalog, nothing changed: {run.seconds:.1f}s\n{run.out}{run.err}")
    assert run.code == 0, run.out + run.err
    assert run.out.strip().splitlines()[-1] == f"diff: no difference in {RELEASES} release(s)", run.out
    for value in SECRETS.values():
        assert value not in run.out + run.err


def test_make_drift_reports_nothing_right_after_up(realistic: Catalog) -> None:
    run = command("drift", realistic.stack)
    print(f"\nmake drift, realistic catalog: {run.seconds:.1f}s")
    assert run.code == 0, run.out + run.err
    assert run.out.splitlines()[-1] == f"drift: none in {RELEASES} release(s)", run.out


def test_a_service_deleted_in_kube_system_is_drift_of_prometheus(realistic: Catalog) -> None:
    stack = realistic.stack
    services = json.loads(stack.kubectl("get", "services", "--namespace", "kube-system", "--selector", "app.kubernetes.io/instance=prometheus",
                                        "--output", "json").stdout)["items"]
    assert services, "kube-prometheus-stack renders Services into kube-system"
    name = services[0]["metadata"]["name"]
    stack.kubectl("delete", "service", name, "--namespace", "kube-system", "--wait=true", "--timeout=60s")
    run = command("drift", stack)
    print(f"\nmake drift after `kubectl delete service {name} -n kube-system`:\n{run.out}")
    assert run.code == 1, run.out + run.err
    assert [line.split()[1] for line in run.out.splitlines() if line.startswith("DRIFT")] == ["prometheus"], run.out
    assert f"object missing from the cluster: v1 Service kube-system/{name} (deleted outside Helm)" in run.out
    # Put it back the way `up` would: an upgrade with the same inputs re-applies the release's objects.
    stack.helm("upgrade", "prometheus", str(stack.project / _chart(stack, "prometheus")), "--namespace", "prometheus", "--reuse-values",
               "--wait", "--timeout", "120s")
    stack.stack.refresh(color="never")


def test_a_changed_value_shows_exactly_its_objects_and_fields(realistic: Catalog) -> None:
    stack = realistic.stack
    stack.stack.set_config("releases.prometheus.values.prometheus.prometheusSpec.retention", auto.ConfigValue("30d"), path=True)
    try:
        run = command("diff", stack)
        print(f"\nmake diff, prometheus retention 30d:\n{run.out}{run.err}")
        assert run.code == 1, run.out + run.err
        headers = [line for line in run.out.splitlines() if line.startswith("# ")]
        assert len(headers) == 1 and headers[0].startswith("# prometheus (namespace prometheus; compared with revision"), headers
        objects = [line for line in run.out.splitlines() if line[:2] in ("~ ", "+ ", "- ")]
        assert [o.split()[1:3] for o in objects] == [["monitoring.coreos.com/v1", "Prometheus"]], objects
        fields = [line.strip() for line in run.out.splitlines() if line.startswith("    ")]
        # 1y is the team's setting (values/prometheus.yaml, from platform.md), not the chart's 15d default.
        assert fields == ['spec.retention: "1y" -> "30d"'], fields
        preview = stack.stack.preview(color="never")
        assert "prometheus: 0 to add, 1 to change, 0 to remove" in preview.stdout, preview.stdout[-3000:]
    finally:
        stack.stack.remove_config("releases.prometheus", path=True)


def _chart(stack: E2EStack, release: str) -> str:
    """The chart path the stack's state gives a release (staged by content)."""
    outputs = stack.stack.outputs()["releases"].value
    return str(outputs[release]["chart"])
