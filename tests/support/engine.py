"""What the end-to-end tests and the bench share: project copies, throwaway stacks, the engine's environment, its events.

As in the Pulumi SDK's automation tests: a file backend in a temporary
folder, throwaway stack names, secrets as secret config values, and destroy
plus stack removal in `finally`. The program runs from a copy of the project
so a test (or a bench run) may edit charts and stack files freely. The pytest
fixtures built on these are in tests/e2e/conftest.py; the bench (bench/) uses
the same helpers, so what it times is what the tests check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from model.identity import RELEASE_TYPE
from model.values import deep_merge

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
# The engine tests get a cluster of their own (name, ports, data), so they never
# touch what `make up` deployed on the main local cluster. ASTRAGO_E2E_CLUSTER
# (name:port-base) lets two test sessions run side by side; under pytest-xdist
# every worker (gw0, gw1, ...) has its own cluster, 100 ports apart.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw-1").removeprefix("gw") or -1)
_DEFAULT_CLUSTER = "astrago-e2e:16543" if _WORKER < 0 else f"astrago-e2e-{_WORKER}:{16543 + 100 * _WORKER}"
_E2E_NAME, _, _E2E_PORT = os.environ.get("ASTRAGO_E2E_CLUSTER", _DEFAULT_CLUSTER).partition(":")
KUBECONFIG = ROOT / ".state" / f"kubeconfig-{_E2E_NAME}"
E2E_CLUSTER = ("--name", _E2E_NAME, "--workdir", str(ROOT / ".state" / f"kwok-{_E2E_NAME}"),
               "--kubeconfig", str(KUBECONFIG), "--port-base", _E2E_PORT or "16543")
PASSPHRASE = "e2e-only-passphrase"
# Copied into each throwaway project: what the program reads, nothing else.
PROJECT_PARTS = ("Pulumi.yaml", "__main__.py", "catalog", "charts", "cli", "components", "model", "postrender", "render", "schemas", "toolchain/tools.toml", "values")
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


def copy_project(target: Path, hook_delay_s: int = 0) -> Path:
    """A copy of the program with the project's virtualenv linked in.

    The catalog's preDelete delays (volumes detaching before the NFS
    provisioner goes, 30 s; tests/unit/test_hook.py checks that value) become
    hook_delay_s: the simulated cluster mounts no volume, and a destroy that
    waits for nothing would cost every full-catalog test half a minute. The
    hook still runs in every destroy; test_lifecycle gives it a delay and
    checks the destroy waits it.
    """
    target.mkdir(parents=True)
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    catalog = target / "catalog" / "releases.yaml"
    catalog.write_text(re.sub(r"(?m)^(\s+delay_s:) \d+$", rf"\g<1> {hook_delay_s}", catalog.read_text()))
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
    from tests.support.chart_repo import build_repo, serve

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


@dataclass
class Recorder:
    """Engine events of one operation, each with the local time it arrived."""

    events: list[tuple[float, auto.EngineEvent]] = field(default_factory=list)

    def __call__(self, event: auto.EngineEvent) -> None:
        self.events.append((time.monotonic(), event))

    def windows(self) -> dict[str, tuple[float, float]]:
        """Release name -> (start, end) of its step, for Helm releases."""
        starts: dict[str, float] = {}
        ends: dict[str, float] = {}
        for at, event in self.events:
            if event.resource_pre_event and event.resource_pre_event.metadata.type == RELEASE_TYPE:
                starts[release_of(event.resource_pre_event.metadata.urn)] = at
            if event.res_outputs_event and event.res_outputs_event.metadata.type == RELEASE_TYPE:
                ends[release_of(event.res_outputs_event.metadata.urn)] = at
        return {name: (starts[name], ends[name]) for name in starts if name in ends}

    def steps(self, op: str, typ: str = RELEASE_TYPE) -> list[auto.StepEventMetadata]:
        """Steps of one kind on one resource type (Helm releases by default)."""
        return [e.resource_pre_event.metadata for _, e in self.events
                if e.resource_pre_event and e.resource_pre_event.metadata.op == op and e.resource_pre_event.metadata.type == typ]


def release_of(urn: str) -> str:
    """The catalog name of a Helm release from its URN (`astrago-<tier>-<name>-release`)."""
    name = urn.rsplit("::", 1)[-1]
    tier_and_name = name.removeprefix("astrago-").removesuffix("-release")
    return tier_and_name.split("-", 1)[1]
