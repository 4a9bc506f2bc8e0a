"""End-to-end fixtures: the real Pulumi engine against the local cluster.

As in the Pulumi SDK's automation tests: a file backend in a temporary
folder, throwaway stack names, secrets as secret config values, and destroy
plus stack removal in `finally`. The program runs from a copy of the project
so tests may edit charts and stack files freely (the helpers are in
tests/support/engine.py, shared with the bench). Nothing here skips: a
missing tool or cluster fails the test with the command that fixes it.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.engine import E2E_CLUSTER, KUBECONFIG, ROOT, TOOLS, E2EStack, copy_project, dispose, engine_environment, new_stack, require


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


# How long a test file waits for another worker's file to finish with the main cluster.
MAIN_CLUSTER_WAIT_S = 1800.0


@pytest.fixture(scope="module")
def main_cluster_turn() -> Iterator[None]:
    """The main local cluster (`make cluster`) for this test file alone: the e2e lane runs files side by side
    (`pytest -n 2 --dist loadfile`), and the files that start, stop or replace the main cluster take turns."""
    lock_path = ROOT / ".state" / "main-cluster.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        deadline = time.monotonic() + MAIN_CLUSTER_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"another test file held the main cluster for {MAIN_CLUSTER_WAIT_S:.0f} s ({lock_path})"
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def engine_env(cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The engine's environment for the session's cluster and a temporary file backend."""
    return engine_environment(tmp_path_factory.mktemp("backend"), cluster)


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
