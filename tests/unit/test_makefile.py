"""Makefile: what `make up` and `make preview` run, read with `make -n` (nothing is executed)."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT


def _pulumi_command(target: str, stack: str = "local", kubeconfig: str | None = None) -> str:
    """The pulumi command line `make <target> STACK=<stack>` would run, KUBECONFIG set or not."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    out = subprocess.run(["make", "-n", target, f"STACK={stack}"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    [line] = [line for line in out.stdout.splitlines() if f"/pulumi {target} " in line]
    return line


def test_up_and_preview_refresh_first_on_the_disposable_local_cluster() -> None:
    assert "--refresh" in _pulumi_command("up")
    assert "--refresh" in _pulumi_command("preview")


def test_with_another_kubeconfig_or_stack_nothing_is_refreshed_implicitly() -> None:
    assert "--refresh" not in _pulumi_command("up", kubeconfig="/elsewhere/kubeconfig")
    assert "--refresh" not in _pulumi_command("preview", stack="dev")


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
