"""The built toolchain: versions, plugins from local files, idempotent setup, reuse of an installed CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.engine import ROOT, TOOLS, require

sys.path.insert(0, str(ROOT / "toolchain"))
import build_tools

# These tests start and stop the main local cluster: never while another worker's file uses it.
pytestmark = pytest.mark.usefixtures("main_cluster_turn")


def _run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)


def test_every_tool_reports_its_pinned_version() -> None:
    for module in build_tools.load_modules():
        if module.bench_only:  # built by `make bench-setup`, not `make setup`
            continue
        for binary in module.binaries:
            path = require((build_tools.PLUGINS if module.plugin else TOOLS) / binary.name, "make setup")
            if binary.version_args:
                out = _run(str(path), *binary.version_args)
                assert module.version.lstrip("v") in out.stdout + out.stderr, f"{binary.name}: {out.stdout or out.stderr}"
    assert _run(str(TOOLS / "pulumi"), "version").stdout.strip() == "v3.259.0"


def test_plugins_resolve_from_the_project_cache_without_downloads(tmp_path: Path) -> None:
    env = {"PULUMI_HOME": str(build_tools.PULUMI_HOME), "PULUMI_SKIP_UPDATE_CHECK": "1", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
    listing = json.loads(_run(str(TOOLS / "pulumi"), "plugin", "ls", "--json", env=env).stdout)
    kubernetes = [p for p in listing if p["name"] == "kubernetes" and p["kind"] == "resource"]
    assert [p["version"] for p in kubernetes] == ["4.25.0"], listing
    hooks = [p for p in listing if p["name"] == "astrago-hooks" and p["kind"] == "resource"]
    assert [p["version"] for p in hooks] == ["0.1.0"], listing
    # The plugin is a file inside the project's cache, installed from our own build.
    installed = build_tools.PULUMI_HOME / "plugins" / "resource-kubernetes-v4.25.0" / "pulumi-resource-kubernetes"
    assert installed.is_file() and installed.stat().st_size == (build_tools.PLUGINS / "pulumi-resource-kubernetes").stat().st_size
    # The schema the engine loads comes from that file: no network, no download.
    schema = _run(str(TOOLS / "pulumi"), "package", "get-schema", "kubernetes@4.25.0", env=env, timeout=300)
    assert schema.returncode == 0 and json.loads(schema.stdout)["version"] == "4.25.0", schema.stderr[-500:]


def test_a_second_setup_builds_nothing() -> None:
    before = {p.name: p.stat().st_mtime_ns for p in TOOLS.iterdir()}
    out = _run(sys.executable, str(ROOT / "toolchain" / "build_tools.py"), timeout=600)
    assert out.returncode == 0 and "nothing to build" in out.stdout, out.stdout + out.stderr
    assert {p.name: p.stat().st_mtime_ns for p in TOOLS.iterdir()} == before, "a warm setup rewrote a tool"


def test_each_stage_builds_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = build_tools.load_modules()
    stages = {stage: {m.name for m in modules if m.needed_for == stage} for stage in build_tools.STAGES}
    assert stages["bench"] == {"helm-diff"}
    assert stages["test"] == {"actionlint", "crane", "helmfile"}
    built: list[str] = []

    def record(module: build_tools.Module, go: tuple[int, int], force: bool) -> bool:
        built.append(module.name)
        return False

    monkeypatch.setattr(build_tools, "build", record)
    assert build_tools.main([]) == 0
    assert set(built) == stages["up"], "make setup builds what make up needs"
    assert built[0] == "pulumi", "the CLI first: plugins are registered with it"
    built.clear()
    assert build_tools.main(["--for", "test"]) == 0
    assert set(built) == stages["up"] | stages["test"], "make test adds the tools only tests use"
    built.clear()
    assert build_tools.main(["--bench"]) == 0
    assert set(built) == {m.name for m in modules}, "make bench-setup builds them all"


def test_a_changed_pin_rebuilds_only_its_module() -> None:
    go = build_tools.go_version()
    modules = {m.name: m for m in build_tools.load_modules()}
    stamps = {name: build_tools.stamp_of(m, go) for name, m in modules.items()}
    changed = build_tools.Module(**{**modules["helm"].__dict__, "ldflags": modules["helm"].ldflags + " -X main.unused=1"})
    assert build_tools.stamp_of(changed, go) != stamps["helm"]
    assert all(build_tools.stamp_of(m, go) == stamps[n] for n, m in modules.items()), "stamps of untouched modules are stable"


def test_an_installed_pulumi_of_the_pinned_version_is_used_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "usr-local-bin"
    elsewhere.mkdir()
    shutil.copy2(require(TOOLS / "pulumi", "make setup"), elsewhere / "pulumi")
    bin_dir = tmp_path / "tools-bin"
    monkeypatch.setattr(build_tools, "BIN", bin_dir)
    monkeypatch.setenv("PATH", f"{elsewhere}{os.pathsep}{os.environ['PATH']}")
    [module] = [m for m in build_tools.load_modules() if m.name == "pulumi"]
    assert build_tools.reuse_installed_pulumi(module)
    assert (bin_dir / "pulumi").resolve() == (elsewhere / "pulumi").resolve()


def test_an_installed_pulumi_of_another_version_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    (elsewhere / "pulumi").write_text("#!/bin/sh\necho v3.1.0\n")
    (elsewhere / "pulumi").chmod(0o755)
    monkeypatch.setattr(build_tools, "BIN", tmp_path / "tools-bin")
    monkeypatch.setenv("PATH", f"{elsewhere}{os.pathsep}/usr/bin:/bin")
    [module] = [m for m in build_tools.load_modules() if m.name == "pulumi"]
    assert not build_tools.reuse_installed_pulumi(module)


def test_doctor_reports_tools_backend_and_ready_nodes() -> None:
    up = _run(sys.executable, str(ROOT / "cluster" / "cluster.py"), "up", timeout=300)
    assert up.returncode == 0, up.stderr
    out = _run(sys.executable, str(ROOT / "toolchain" / "doctor.py"), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nodes ready: 5" in out.stdout and "state backend:" in out.stdout and "v3.259.0" in out.stdout


def test_doctor_fails_and_names_the_fix_when_the_cluster_is_down(tmp_path: Path) -> None:
    never_started = f"--name never-started --workdir {tmp_path} --kubeconfig {tmp_path / 'kubeconfig'} --port-base 19443"
    out = _run(sys.executable, str(ROOT / "toolchain" / "doctor.py"), "--cluster-args", never_started, timeout=300)
    assert out.returncode != 0, out.stdout
    assert "nodes ready: 0" in out.stdout or "not running" in out.stdout, out.stdout[-800:]
    assert "run `make cluster`" in out.stdout, out.stdout[-800:]
