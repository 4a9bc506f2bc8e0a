"""End-to-end fixtures: the real Pulumi engine against the local cluster.

As in the Pulumi SDK's automation tests: a file backend in a temporary
folder, throwaway stack names, secrets as secret config values, and destroy
plus stack removal in `finally`. The program runs from a copy of the project
so tests may edit charts and stack files freely. Nothing here skips: a
missing tool or cluster fails the test with the command that fixes it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from model.values import deep_merge

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
# The engine tests get a cluster of their own (name, ports, data), so they never
# touch what `make up` deployed on the main local cluster. ASTRAGO_E2E_CLUSTER
# (name:port-base) lets two test sessions run side by side.
_E2E_NAME, _, _E2E_PORT = os.environ.get("ASTRAGO_E2E_CLUSTER", "astrago-e2e:16543").partition(":")
KUBECONFIG = ROOT / ".state" / f"kubeconfig-{_E2E_NAME}"
E2E_CLUSTER = ("--name", _E2E_NAME, "--workdir", str(ROOT / ".state" / f"kwok-{_E2E_NAME}"),
               "--kubeconfig", str(KUBECONFIG), "--port-base", _E2E_PORT or "16543")
PASSPHRASE = "e2e-only-passphrase"
# Copied into each throwaway project: what the program reads, nothing else.
PROJECT_PARTS = ("Pulumi.yaml", "__main__.py", "catalog", "charts", "cli", "components", "model", "postrender", "schemas", "toolchain/tools.toml", "values")
# The simulated cluster has no volume provisioner: the product must not wait for volumes.
KWOK_VALUES = {"astrago": {"values": {"mariadb": {"persistence": {"enabled": False}}, "storage": {"workloadLogs": {"enabled": False}}}}}
SECRETS = {
    "keycloakAdminPassword": "e2e-kc-admin-Zq81", "keycloakClientSecret": "e2e-kc-client-Zq82",
    "mariadbRootPassword": "e2e-db-root-Zq83", "mariadbPassword": "e2e-db-user-Zq84",
    "harborAdminPassword": "e2e-harbor-Zq85", "initialUserPassword": "e2e-initial-Zq86",
}


def require(path: Path, fix: str) -> Path:
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `{fix}` (end-to-end tests need the real tool)")
    return path


@pytest.fixture(scope="session")
def cluster() -> Iterator[Path]:
    """A cluster for the engine tests, started for the session and stopped after it."""
    for tool in ("kube-apiserver", "etcd", "kwok", "kwokctl", "pulumi", "helm"):
        require(TOOLS / tool, "make setup")
    script = [sys.executable, str(ROOT / "cluster" / "cluster.py")]
    # The e2e cluster is the tests' own and emptied by every session: one left unhealthy by an
    # interrupted run holds nothing to keep, so it is replaced (a user's cluster never is).
    result = subprocess.run([*script, "up", "--replace", *E2E_CLUSTER], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"starting the e2e cluster failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield require(KUBECONFIG, "make cluster")
    finally:
        subprocess.run([*script, "down", *E2E_CLUSTER], capture_output=True, text=True, timeout=300)


def engine_environment(backend: Path, kubeconfig: Path) -> dict[str, str]:
    """Environment for the engine: project plugins, no downloads, a file backend in `backend`."""
    return {
        "PATH": f"{TOOLS}:{os.environ['PATH']}",
        "PULUMI_HOME": str(ROOT / ".tools" / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "1",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "KUBECONFIG": str(kubeconfig),
    }


@pytest.fixture(scope="session")
def engine_env(cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The engine's environment for the session's cluster and a temporary file backend."""
    return engine_environment(tmp_path_factory.mktemp("backend"), cluster)


def copy_project(target: Path, keep_delays: bool = False) -> Path:
    """A copy of the program with the project's virtualenv linked in.

    The catalog's preDelete delays (volumes detaching before the NFS
    provisioner goes, 30 s) become 0 unless keep_delays: the simulated
    cluster mounts no volume, and a destroy that waits for nothing would cost
    every full-catalog test half a minute. test_lifecycle keeps them and
    checks the wait; the hook still runs in every destroy.
    """
    target.mkdir(parents=True)
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    if not keep_delays:
        catalog = target / "catalog" / "releases.yaml"
        catalog.write_text(re.sub(r"(?m)^(\s+delay_s:) \d+$", r"\1 0", catalog.read_text()))
    (target / ".venv").symlink_to(require(ROOT / ".venv", "make setup"))
    # The program runs the pinned tools of its own folder (cli/process.py), as in the project.
    (target / ".tools").symlink_to(require(ROOT / ".tools", "make setup"))
    return target


@dataclass
class E2EStack:
    """A throwaway stack of a project copy."""

    stack: auto.Stack
    project: Path
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.stack.name

    def helm(self, *args: str) -> str:
        out = subprocess.run([str(TOOLS / "helm"), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **self.env}, check=True)
        return out.stdout

    def pulumi(self, *args: str) -> str:
        """The CLI on this stack, as a person runs it (no --show-secrets unless asked)."""
        out = subprocess.run([str(TOOLS / "pulumi"), *args, "--stack", self.name], capture_output=True, text=True, timeout=600,
                             cwd=self.project, env={**os.environ, **self.env}, check=True)
        return out.stdout

    def stored_state(self) -> str:
        """Every file of the file backend, as text: what sits on disk."""
        backend = Path(self.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
        return "\n".join(p.read_text(errors="replace") for p in backend.rglob("*") if p.is_file())

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(TOOLS / "kubectl"), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **self.env}, check=check)


def new_stack(project: Path, env: dict[str, str], base: str, config: dict[str, Any], prefix: str = "e2e") -> E2EStack:
    """Create a throwaway stack whose plain config is `base`'s stack file laid under `config`."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    # The Automation API finds the CLI by itself; point it at the project's build.
    command = auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True)
    workspace = auto.LocalWorkspace(work_dir=str(project), env_vars=env, secrets_provider="passphrase", pulumi_command=command)
    stack = auto.Stack.create(name, workspace)
    stack_file = project / f"Pulumi.{name}.yaml"
    settings = yaml.safe_load(stack_file.read_text()) or {}
    base_config = (yaml.safe_load((ROOT / f"Pulumi.{base}.yaml").read_text()) or {}).get("config", {})
    plain = {k: v for k, v in base_config.items() if not (isinstance(v, dict) and "secure" in v)}
    for key, value in config.items():
        full = f"astrago-deploy:{key}"
        # Overrides lay over the base stack's maps, as a stack file's own values would.
        plain[full] = deep_merge(plain[full], value) if isinstance(value, dict) and isinstance(plain.get(full), dict) else value
    settings["config"] = {**settings.get("config", {}), **plain}
    stack_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    for key, value in SECRETS.items():
        stack.set_config(key, auto.ConfigValue(value=value, secret=True))
    return E2EStack(stack=stack, project=project, env=env)


def sync_standins(project: Path, scratch: Path, extra: list[tuple[str, str]] | None = None) -> None:
    """Serve stand-ins of every declared chart on 127.0.0.1 and sync them into the project's lock.

    The repository is stopped afterwards: deployments then read only the local archives.
    """
    from commands.charts import sync
    from tests.chart_repo import build_repo, serve

    declared = yaml.safe_load((project / "charts" / "external.yaml").read_text())["charts"]
    (scratch / "repo").mkdir(parents=True)
    with serve(scratch / "repo") as repo:
        build_repo(scratch / "repo", [(c["name"], c["version"]) for c in declared] + (extra or []), repo.url)
        for chart in declared:
            chart["repository"] = repo.url
        (project / "charts" / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        sync(project / "charts", None, 120)


def dispose(stack: E2EStack) -> None:
    """Destroy what the stack deployed and remove it; both bounded by the engine's own timeouts."""
    try:
        stack.stack.destroy(on_output=print)
    finally:
        stack.stack.workspace.remove_stack(stack.name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture
def local_stack(project: Path, engine_env: dict[str, str]) -> Iterator[E2EStack]:
    """The local stack's settings on a throwaway stack, destroyed afterwards."""
    stack = new_stack(project, engine_env, "local", {})
    try:
        yield stack
    finally:
        dispose(stack)
