"""Updates of two different stacks run side by side (the lock is per stack).

Two stacks of this program deploy the same release names and namespaces, so
each targets a cluster of its own, as two environments do.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.engine import ROOT, E2EStack, copy_project, dispose, new_stack

SECOND_CLUSTER = ("--name", "astrago-e2e-second", "--workdir", str(ROOT / ".state" / "kwok-e2e-second"),
                  "--kubeconfig", str(ROOT / ".state" / "kubeconfig-e2e-second"), "--port-base", "16593")


@pytest.fixture
def second_cluster() -> Iterator[Path]:
    script = [sys.executable, str(ROOT / "cluster" / "cluster.py")]
    started = subprocess.run([*script, "up", *SECOND_CLUSTER], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"second cluster did not start:\n{started.stdout}\n{started.stderr}"
    try:
        yield ROOT / ".state" / "kubeconfig-e2e-second"
    finally:
        subprocess.run([*script, "down", *SECOND_CLUSTER], capture_output=True, text=True, timeout=300)


def test_two_stacks_update_at_the_same_time(tmp_path: Path, engine_env: dict[str, str], second_cluster: Path) -> None:
    project = copy_project(tmp_path / "project")
    first = new_stack(project, engine_env, "local", {}, prefix="e2e-first")
    second = new_stack(project, {**engine_env, "KUBECONFIG": str(second_cluster)}, "local", {}, prefix="e2e-second")
    windows: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []

    def update(stack: E2EStack) -> None:
        try:
            started = time.monotonic()
            result = stack.stack.up(color="never", message="e2e: side by side")
            assert result.summary.result == "succeeded"
            windows[stack.name] = (started, time.monotonic())
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    try:
        threads = [threading.Thread(target=update, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not errors, errors
        (a_start, a_end), (b_start, b_end) = windows[first.name], windows[second.name]
        assert max(a_start, b_start) < min(a_end, b_end), f"the two updates did not overlap: {windows}"
        for stack in (first, second):
            releases = stack.helm("list", "-A", "-q").split()
            assert "astrago" in releases, f"{stack.name}: {releases}"
    finally:
        for stack in (first, second):
            dispose(stack)
