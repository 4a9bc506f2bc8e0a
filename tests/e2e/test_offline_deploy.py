"""An air-gapped install: bundle where the chart repository is reachable, deploy from the unpacked bundle where it is not.

Stand-ins of every declared chart are served on 127.0.0.1 and synced into a
project copy, bundled, and the repository is stopped. The project copy then
loses its own chart archives and lock, the bundle is unpacked into a fresh
folder, and a throwaway stack with the stage settings deploys the full
catalog with `astrago-deploy:chartsDir` pointing at the unpacked charts.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import yaml

from commands.bundle import create, unpack
from commands.charts import sync
from model.catalog import load_catalog
from model.charts import load_lock
from model.identity import RELEASE_TYPE
from tests.chart_repo import build_repo, serve
from tests.e2e.conftest import KWOK_VALUES, ROOT, copy_project, dispose, new_stack


def _repository_down(port: int) -> bool:
    """True when nothing answers on the repository's port any more."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


def test_a_stack_deploys_from_an_unpacked_bundle_while_the_repository_is_down(engine_env: dict[str, str], tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    declared = yaml.safe_load((ROOT / "charts" / "external.yaml").read_text())["charts"]
    (tmp_path / "repo").mkdir()
    with serve(tmp_path / "repo") as repo:
        build_repo(tmp_path / "repo", [(c["name"], c["version"]) for c in declared], repo.url)
        for chart in declared:
            chart["repository"] = repo.url
        (project / "charts" / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        sync(project / "charts", None, 120)
        started = time.monotonic()
        created = create("stage", tmp_path / "stage-bundle.tar.gz", ROOT, str(project / "charts"))
        create_s = time.monotonic() - started
        port = repo.port
    assert _repository_down(port), f"the chart repository on 127.0.0.1:{port} still answers"
    # Only the bundle can supply the external charts from here on.
    shutil.rmtree(project / "charts" / "external")
    (project / "charts" / "versions.lock").unlink()

    site = tmp_path / "site"
    started = time.monotonic()
    unpack(created.path, site)
    unpack_s = time.monotonic() - started
    verify = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "commands.charts", "verify", "--charts-dir", str(site / "charts")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    print(f"\nbundle create {create_s:.2f}s, unpack {unpack_s:.3f}s ({created.path.stat().st_size} bytes, {len(created.files)} files)")

    stack = new_stack(project, engine_env, "stage", {"releases": KWOK_VALUES, "chartsDir": str(site / "charts")}, prefix="e2e-offline")
    try:
        started = time.monotonic()
        result = stack.stack.up(color="never", message="e2e: offline bundle, repository down")
        assert result.summary.result == "succeeded", result.stderr
        print(f"up from the unpacked bundle: {time.monotonic() - started:.1f}s")
        assert _repository_down(port)

        catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
        listed = {r["name"]: r for r in json.loads(stack.helm("list", "-A", "-o", "json"))}
        assert {r.name for r in catalog.releases} <= set(listed), f"releases deployed: {sorted(listed)}"
        assert all(listed[r.name]["status"] == "deployed" for r in catalog.releases), {n: r["status"] for n, r in listed.items()}
        lock = load_lock(site / "charts")
        charts = {r.name: r.chart.name for r in catalog.releases if r.chart.kind == "external"}
        for release, chart in charts.items():
            assert listed[release]["chart"] == f"{chart}-{lock[chart].version}", listed[release]

        state = stack.stack.export_stack().deployment or {}
        chart_inputs = {r["urn"].rsplit("::", 1)[-1]: (r.get("inputs") or {}).get("chart", "")
                        for r in state.get("resources", []) if r.get("type") == RELEASE_TYPE}
        external_inputs = [path for path in chart_inputs.values() if "/external/" in path]
        assert len(external_inputs) == len(charts), chart_inputs
        assert all(path.startswith(str(site / "charts" / "external") + "/") for path in external_inputs), external_inputs
    finally:
        dispose(stack)
