"""A site installed by Helmfile moves to its stack: helmfile sync, import-helmfile, parity, adopt, up.

The Helmfile site of the tests (tests/helmfile_site, the team's layout) is
installed on the e2e cluster by the pinned Helmfile, with an environment for
the simulated cluster (no volume provisioner) and workload-free stand-ins of the
external charts (the integration test renders the realistic ones). The stack is imported from it,
parity must be clean, the plain-text passwords are set as secrets, and the
adopting `up` must replace no pod and raise every Helm revision by at most one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from commands import import_helmfile, parity
from model.settings import SKIP_CHECKPOINTS
from tests.e2e.test_adopt import _helm_releases, _pods
from tests.support.engine import ROOT, TOOLS, E2EStack, dispose, require
from tests.support.standin_charts import build_charts_dir

SITE = ROOT / "tests" / "helmfile_site"
KWOK_ENV = """  kwok:
    values:
      - environments/common/values.yaml
      - environments/base/values.yaml
      - environments/customers/kwok/values.yaml
"""


def _site(target: Path) -> Path:
    """The site with an environment for the simulated cluster: no volumes to wait for."""
    shutil.copytree(SITE, target)
    state = target / "helmfile.yaml.gotmpl"
    state.write_text(state.read_text().replace("---\n", KWOK_ENV + "---\n", 1))
    (target / "environments" / "customers" / "kwok").mkdir(parents=True)
    (target / "environments" / "customers" / "kwok" / "values.yaml").write_text("astrago:\n  persistence: false\n")
    return target


def _passwords(site: Path) -> dict[str, str]:
    base = yaml.safe_load((site / "environments" / "base" / "values.yaml").read_text())
    return {
        "keycloakAdminPassword": base["keycloak"]["adminPassword"], "keycloakClientSecret": base["keycloak"]["clientSecret"],
        "mariadbRootPassword": base["mariadb"]["rootPassword"], "mariadbPassword": base["mariadb"]["password"],
        "harborAdminPassword": base["harbor"]["adminPassword"], "initialUserPassword": base["astrago"]["initialUserPassword"],
    }


def test_a_helmfile_site_moves_to_its_stack_replacing_no_pod(project: Path, engine_env: dict[str, str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    helmfile = require(TOOLS / "helmfile", "python3 toolchain/build_tools.py helmfile")
    # Stand-ins without workloads for the external charts (the simulated cluster binds no volume, and the
    # realistic ones' StatefulSets would wait for one); the product chart is this repository's own.
    build_charts_dir(project / "charts", ROOT / "charts")
    (project / "toolchain").mkdir(exist_ok=True)
    shutil.copy(ROOT / "toolchain" / "tools.toml", project / "toolchain" / "tools.toml")
    site = _site(tmp_path / "site")
    for key, value in {**engine_env, "ASTRAGO_CHARTS": str(project / "charts"), "ASTRAGO_ROOT": str(project),
                       "PYTHONPATH": str(ROOT)}.items():
        monkeypatch.setenv(key, value)
    helm_home = tmp_path / "helm-home"
    env = {**os.environ, "HELM_CONFIG_HOME": str(helm_home / "config"), "HELM_CACHE_HOME": str(helm_home / "cache"),
           "HELM_DATA_HOME": str(helm_home / "data"), "HELMFILE_UPGRADE_NOTICE_DISABLED": "1"}
    sync = subprocess.run([str(helmfile), "--file", str(site / "helmfile.yaml.gotmpl"), "--environment", "kwok", "--helm-binary",
                           str(TOOLS / "helm"), "sync", "--skip-deps"], capture_output=True, text=True, timeout=1200, env=env, cwd=site)
    assert sync.returncode == 0, sync.stdout[-3000:] + sync.stderr[-3000:]
    name = f"helmfile-{uuid.uuid4().hex[:8]}"
    command = auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True)
    workspace = auto.LocalWorkspace(work_dir=str(project), env_vars=engine_env, secrets_provider="passphrase", pulumi_command=command)
    stack = E2EStack(stack=auto.Stack.create(name, workspace), project=project, env=engine_env)
    try:
        before = _helm_releases(stack)
        namespaces = {r["namespace"] for r in before.values()}
        pods = _stable_pods(stack, namespaces)
        assert import_helmfile.main(["--dir", str(site), "--env", "kwok", "--stack", name, "--project", str(project)]) == 0, capsys.readouterr()
        assert parity.main(["--dir", str(site), "--env", "kwok", "--stack", name, "--project", str(project)]) == 0, capsys.readouterr()
        capsys.readouterr()
        for key, value in _passwords(site).items():
            stack.stack.set_config(key, auto.ConfigValue(value=value, secret=True))
        stack.stack.set_config("astrago-deploy:adopt[0]", auto.ConfigValue(value="all"), path=True)
        stack.stack.workspace.env_vars = {**engine_env, SKIP_CHECKPOINTS: "true"}
        stack.stack.up(on_output=print)
        after = _helm_releases(stack)
        for release, row in before.items():
            assert int(after[release]["revision"]) <= int(row["revision"]) + 1, (release, row["revision"], after[release]["revision"])
        assert _stable_pods(stack, namespaces) == pods, "a pod was replaced"
    finally:
        stack.stack.workspace.env_vars = dict(engine_env)
        dispose(stack)


def _stable_pods(stack: E2EStack, namespaces: set[str], timeout_s: float = 120) -> dict[str, str]:
    """The long-running pods once two reads 3 s apart agree (a rollout has finished)."""
    import time

    deadline, last = time.monotonic() + timeout_s, None
    while True:
        pods = _pods(stack, namespaces)  # long-running pods: runs of the exporter's CronJob come and go
        if pods == last:
            return pods
        assert time.monotonic() < deadline, f"pods did not settle in {timeout_s}s: {sorted(pods)}"
        last = pods
        time.sleep(3)
