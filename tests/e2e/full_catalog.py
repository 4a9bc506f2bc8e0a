"""The full four-tier catalog deployed on the e2e cluster, and the project's commands run against it.

deployed_catalog: as in test_lifecycle.py, simple stand-ins of the external
charts, served by a real chart repository on 127.0.0.1 and synced into a
project copy's lock, the product's own charts as they are, the `stage`
stack's settings with the values the simulated cluster needs (no
persistence). Used by the diff and drift tests.

deployed_realistic_catalog: the whole catalog with the realistic stand-ins
(tests/realistic_charts) and the `dev` stack's settings, persistence on
(the cluster's provisioner binds every claim), harbor enabled: what
`make up-full` deploys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.engine import KWOK_VALUES, ROOT, E2EStack, copy_project, dispose, new_stack, sync_standins
from tests.support.standin_charts import build_realistic_charts_dir


@dataclass
class Catalog:
    """The deployed stack and how long its first `up` took."""

    stack: E2EStack
    up_s: float


@contextmanager
def deployed_catalog(root: Path, engine_env: dict[str, str], prefix: str) -> Iterator[Catalog]:
    """Deploy every release of the catalog on a throwaway stack; destroy it afterwards."""
    project = copy_project(root / "project")
    sync_standins(project, root)
    stack = new_stack(project, engine_env, "stage", {"releases": KWOK_VALUES}, prefix=prefix)
    try:
        started = time.monotonic()
        result = stack.stack.up(message="e2e: full catalog", color="never")
        assert result.summary.result == "succeeded", result.stderr
        yield Catalog(stack=stack, up_s=time.monotonic() - started)
    finally:
        dispose(stack)


def realistic_stack(root: Path, engine_env: dict[str, str], prefix: str) -> E2EStack:
    """A throwaway stack of dev's settings (persistence on) with the realistic charts and harbor enabled."""
    project = copy_project(root / "project")
    charts = build_realistic_charts_dir(root / "realistic-charts")
    return new_stack(project, engine_env, "dev", {
        "chartsDir": str(charts),
        "cluster": {"externalIP": "127.0.0.1", "domain": "astrago.localhost"},
        "releases": {"harbor": {"enabled": True}},
    }, prefix=prefix)


@contextmanager
def deployed_realistic_catalog(root: Path, engine_env: dict[str, str], prefix: str) -> Iterator[Catalog]:
    """Deploy every release of the catalog from the realistic charts; destroy it afterwards."""
    stack = realistic_stack(root, engine_env, prefix)
    try:
        started = time.monotonic()
        result = stack.stack.up(message="e2e: full realistic catalog", color="never")
        assert result.summary.result == "succeeded", result.stderr
        yield Catalog(stack=stack, up_s=time.monotonic() - started)
    finally:
        dispose(stack)


@dataclass
class Run:
    """One run of a project command."""

    code: int
    out: str
    err: str
    seconds: float


def command(module: str, stack: E2EStack, *args: str, timeout_s: float = 600) -> Run:
    """`python -m commands.<module> --stack <stack> --project <copy>` as `make` runs it, timed."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", f"commands.{module}", "--stack", stack.name, "--project", str(stack.project), *args],
                            capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env={**os.environ, **stack.env})
    return Run(code=result.returncode, out=result.stdout, err=result.stderr, seconds=time.monotonic() - started)
