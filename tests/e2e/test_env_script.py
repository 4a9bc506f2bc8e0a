"""Plain `pulumi` in a shell of `source toolchain/env.sh`, on the real engine: it does what `make preview` does.

The project copy gets the env script, the shim, the policy pack and the local
stack file; the state goes to a temporary file backend and the cluster is the
e2e cluster (KUBECONFIG given, so nothing is refreshed implicitly).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.engine import ROOT, copy_project, require

PARTS = ("policy", "toolchain/env.sh", "toolchain/shims", "toolchain/update_message.py", "Pulumi.local.yaml")


def _project(tmp_path: Path) -> Path:
    project = copy_project(tmp_path / "project")
    for part in PARTS:
        source, target = ROOT / part, project / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    if not (project / ".tools").exists():  # copy_project links it already
        (project / ".tools").symlink_to(require(ROOT / ".tools", "make setup"))
    return project


def _shell(project: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"source toolchain/env.sh && {script}"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)


def _plain_environment(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    """A user's shell: none of the make targets' variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "ASTRAGO_")) and k != "KUBECONFIG"}
    return {**env, "PULUMI_BACKEND_URL": f"file://{tmp_path / 'backend'}", "KUBECONFIG": str(kubeconfig)}


def test_plain_pulumi_preview_of_the_local_stack_runs_as_make_does(tmp_path: Path, cluster: Path) -> None:
    project = _project(tmp_path)
    env = _plain_environment(tmp_path, cluster)
    (tmp_path / "backend").mkdir()
    created = _shell(project, "PULUMI_CONFIG_PASSPHRASE=astrago-local pulumi stack init local --non-interactive", env)
    assert created.returncode == 0, created.stderr
    try:
        # No passphrase given: the shim gives the local stack its documented one.
        result = _shell(project, "command -v pulumi && pulumi preview --stack local --non-interactive", env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[0] == f"{project}/toolchain/shims/pulumi"
        # The policy pack ran, as on every make preview.
        assert "astrago-deploy@v1.0.0" in result.stdout, result.stdout
        assert "+ " in result.stdout and "astrago-applications-astrago-release" in result.stdout
    finally:
        _shell(project, "PULUMI_CONFIG_PASSPHRASE=astrago-local pulumi stack rm local --yes --force --non-interactive", env)


def test_without_the_projects_plugin_cache_the_program_names_the_fix(tmp_path: Path, cluster: Path) -> None:
    project = _project(tmp_path)
    env = _plain_environment(tmp_path, cluster)
    (tmp_path / "backend").mkdir()
    # A pulumi of the pinned version with a plugin cache of its own (as a usual install has).
    home = tmp_path / "home"
    # Downloads off: this machine reaches no plugin server, and the program's check comes first anyway.
    plain = {**env, "PULUMI_HOME": str(home), "PULUMI_CONFIG_PASSPHRASE": "astrago-local", "PULUMI_SKIP_UPDATE_CHECK": "1",
             "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
             "PATH": f"{ROOT / '.tools' / 'bin'}:{env['PATH']}"}
    pulumi = str(ROOT / ".tools" / "bin" / "pulumi")
    subprocess.run([pulumi, "stack", "init", "local", "--non-interactive"], cwd=project, env=plain, check=True, capture_output=True, timeout=120)
    try:
        result = subprocess.run([pulumi, "preview", "--stack", "local", "--non-interactive"], cwd=project, env=plain,
                                capture_output=True, text=True, timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"the resource plugin kubernetes 4.25.0 is not in the plugin cache {home / 'plugins'}" in output, output
        assert "the resource plugin astrago-hooks 0.1.0 is not in the plugin cache" in output
        assert "run `make setup`" in output and "Traceback" not in output
    finally:
        subprocess.run([pulumi, "stack", "rm", "local", "--yes", "--force", "--non-interactive"], cwd=project, env=plain, capture_output=True, timeout=120)
