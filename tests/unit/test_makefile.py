"""What `make up`/`make preview` and a plain `pulumi` after `source toolchain/env.sh` run.

The Makefile calls the project's `pulumi` (toolchain/shims/pulumi), the one
env.sh puts on PATH, so both add the same things. The shim is run here with a
stand-in for the pinned CLI that prints its arguments and environment
(nothing is deployed); the real engine runs it in tests/e2e/test_env_script.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

ECHO = """#!/usr/bin/env python3
import json, os, sys
print(json.dumps({"args": sys.argv[1:], "passphrase": os.environ.get("PULUMI_CONFIG_PASSPHRASE"),
                  "kubeconfig": os.environ.get("KUBECONFIG"), "home": os.environ.get("PULUMI_HOME"),
                  "no_downloads": os.environ.get("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION")}))
"""


def _make_line(target: str, stack: str = "local") -> str:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    out = subprocess.run(["make", "-n", target, f"STACK={stack}"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    [line] = [line for line in out.stdout.splitlines() if f"/pulumi {target} " in line]
    return line


@pytest.mark.parametrize("target", ["up", "preview"])
def test_make_runs_the_projects_pulumi(target: str) -> None:
    assert f"{ROOT}/toolchain/shims/pulumi {target} " in _make_line(target)


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A project copy holding the shim and a stand-in for the pinned CLI."""
    (tmp_path / "toolchain" / "shims").mkdir(parents=True)
    shutil.copy(ROOT / "toolchain" / "shims" / "pulumi", tmp_path / "toolchain" / "shims" / "pulumi")
    shutil.copy(ROOT / "toolchain" / "update_message.py", tmp_path / "toolchain" / "update_message.py")
    (tmp_path / ".tools" / "bin").mkdir(parents=True)
    fake = tmp_path / ".tools" / "bin" / "pulumi"
    fake.write_text(ECHO)
    fake.chmod(0o755)
    return tmp_path / "toolchain" / "shims" / "pulumi"


def _run(shim: Path, *args: str, **env: str) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PULUMI_CONFIG_PASSPHRASE", "ASTRAGO_LOCAL_CLUSTER")}
    out = subprocess.run([str(shim), *args], capture_output=True, text=True, timeout=60, env={**base, **env})
    assert out.returncode == 0, out.stderr
    seen: dict[str, object] = json.loads(out.stdout)
    return seen


def test_the_local_stack_gets_its_passphrase_cluster_refresh_and_policies(shim: Path) -> None:
    root = shim.parent.parent.parent
    seen = _run(shim, "preview", "--stack", "local")
    assert seen["args"] == ["preview", "--stack", "local", "--policy-pack", f"{root}/policy", "--refresh"]
    assert seen["passphrase"] == "astrago-local" and seen["kubeconfig"] == f"{root}/.state/kubeconfig"
    assert seen["home"] == f"{root}/.tools/pulumi-home" and seen["no_downloads"] == "true"


def test_up_records_the_runner_and_goes_on_past_a_failing_release(shim: Path) -> None:
    args = _run(shim, "up", "--stack=dev")["args"]
    assert isinstance(args, list)
    assert args[:4] == ["up", "--stack=dev", "--policy-pack", f"{shim.parent.parent.parent}/policy"]
    assert "--continue-on-error" in args and "--message" in args and "--refresh" not in args


def test_other_stacks_get_no_passphrase_and_another_kubeconfig_no_refresh(shim: Path) -> None:
    dev = _run(shim, "preview", "-s", "dev")
    assert dev["passphrase"] is None and dev["kubeconfig"] is None and "--refresh" not in dev["args"]  # type: ignore[operator]
    elsewhere = _run(shim, "preview", "--stack", "local", KUBECONFIG="/elsewhere/kubeconfig")
    assert elsewhere["kubeconfig"] == "/elsewhere/kubeconfig" and "--refresh" not in elsewhere["args"]  # type: ignore[operator]
    # make's own local cluster (it sets KUBECONFIG itself and says so).
    made = _run(shim, "preview", "--stack", "local", KUBECONFIG="/x", ASTRAGO_LOCAL_CLUSTER="1")
    assert "--refresh" in made["args"]  # type: ignore[operator]


def test_every_other_command_passes_through_unchanged(shim: Path) -> None:
    assert _run(shim, "stack", "ls", "--json")["args"] == ["stack", "ls", "--json"]
    assert _run(shim, "destroy", "--stack", "local")["args"] == ["destroy", "--stack", "local"]


def test_without_the_toolchain_it_says_to_run_make_setup(shim: Path) -> None:
    (shim.parent.parent.parent / ".tools" / "bin" / "pulumi").unlink()
    out = subprocess.run([str(shim), "preview"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "run `make setup`" in out.stderr


def test_a_failed_up_is_followed_by_the_diagnosis_that_points_to_make_recover() -> None:
    out = subprocess.run(["make", "-n", "up", "STACK=local"], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True).stdout
    after = out[out.index("/pulumi up "):]
    assert "|| { rc=$?;" in after and "-m commands.diagnose --stack local" in after and "exit $rc; }" in after, after


def _recipe(target: str, stack: str = "local") -> list[str]:
    out = subprocess.run(["make", "-n", target, f"STACK={stack}"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_read_only_targets_check_the_stack_and_never_create_one() -> None:
    for target in ("preview", "refresh", "destroy", "policy", "drift", "recover"):
        lines = _recipe(target, "dev")
        assert any("-m commands.stackcheck --stack dev --in-backend" in line for line in lines), (target, lines)
        assert not any("stack select --create" in line for line in lines), (target, lines)


def test_up_stack_and_secret_create_a_stack_only_after_the_check() -> None:
    for target in ("up", "stack", "secret"):
        lines = _recipe(target, "dev")
        check = next(i for i, line in enumerate(lines) if "-m commands.stackcheck --stack dev" in line)
        create = next(i for i, line in enumerate(lines) if "stack select --create dev" in line)
        assert check < create, lines
