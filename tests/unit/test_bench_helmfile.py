"""bench/helmfile_gen.py: the Helmfile state `make bench` compares against is the same work as the program's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.helmfile_gen import SECRET_ENV_PREFIX, secret_env, write_helmfile
from model.deployment import Deployment, resolve_stack
from tests.conftest import ROOT, TEST_SECRETS
from tests.support.standin_charts import build_charts_dir

HELM = ROOT / ".tools" / "bin" / "helm"


def _generate(tmp_path: Path, stack: str = "stage") -> tuple[dict[str, Any], Path, Deployment]:
    charts = build_charts_dir(tmp_path / "charts")
    deployment = resolve_stack(stack, ROOT, str(charts))
    path = write_helmfile(deployment, ROOT, tmp_path / "helmfile", HELM)
    return yaml.safe_load(path.read_text()), path.parent, deployment


def test_every_enabled_release_with_its_namespace_chart_and_helm_options(tmp_path: Path) -> None:
    state, _, deployment = _generate(tmp_path)
    releases = {r["name"]: r for r in state["releases"]}
    assert list(releases) == list(deployment.releases), "same releases, in deploy order"
    assert state["helmBinary"] == str(HELM)
    for name, resolved in deployment.releases.items():
        entry = releases[name]
        assert entry["namespace"] == resolved.namespace
        assert entry["chart"] == str(ROOT / resolved.chart_path)
        assert (entry["wait"], entry["waitForJobs"], entry["timeout"], entry["atomic"], entry["cleanupOnFail"], entry["historyMax"]) == (
            resolved.helm.wait, resolved.helm.wait_for_jobs, resolved.helm.timeout_s, resolved.helm.atomic, resolved.helm.cleanup_on_fail, resolved.helm.max_history)


def test_needs_are_the_previous_tier_and_catalog_needs_as_namespace_slash_name(tmp_path: Path) -> None:
    state, _, deployment = _generate(tmp_path)
    releases = {r["name"]: r for r in state["releases"]}
    resolved = deployment.releases
    for name, release in resolved.items():
        assert releases[name].get("needs", []) == [f"{resolved[d].namespace}/{d}" for d in release.depends_on]
    # keycloak needs the whole monitoring tier and keycloak-addons of its own tier.
    assert "keycloak/keycloak-addons" in releases["keycloak"]["needs"]
    assert "prometheus/prometheus" in releases["keycloak"]["needs"]


def test_values_files_hold_the_resolved_values_and_secrets_only_as_environment_lookups(tmp_path: Path) -> None:
    state, folder, deployment = _generate(tmp_path)
    written = "\n".join(p.read_text() for p in folder.rglob("*") if p.is_file())
    for value in TEST_SECRETS.values():
        assert value not in written
    for entry in state["releases"]:
        resolved = deployment.releases[entry["name"]]
        assert yaml.safe_load(Path(entry["values"][0]).read_text()) == resolved.values
        if resolved.secret_paths:
            template = Path(entry["values"][1]).read_text()
            for key in resolved.secret_paths.values():
                assert f'requiredEnv "{secret_env(key)}"' in template
        else:
            assert len(entry["values"]) == 1
    assert secret_env("mariadbPassword") == f"{SECRET_ENV_PREFIX}mariadbPassword"


def test_the_gpu_node_check_is_a_presync_hook(tmp_path: Path) -> None:
    state, _, _ = _generate(tmp_path)
    [operator] = [r for r in state["releases"] if r["name"] == "gpu-operator"]
    [hook] = operator["hooks"]
    assert hook["events"] == ["presync"] and "nvidia.com/gpu.present=true" in hook["args"][-1]
