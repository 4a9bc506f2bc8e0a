"""The bad-input cases the Pulumi program itself refuses, against a deployed stack on the e2e cluster.

tests/integration/test_bad_input.py runs the matrix through `make` (whose
pre-flight stops most of it before pulumi starts). Here pulumi runs the
program directly, as `pulumi preview` / `pulumi up` without make would: a
throwaway stack with the local stack's settings and one external release
(mpi-operator, a stand-in chart) is deployed once, then each
case edits the project copy, runs preview and up, and asserts one message, no
traceback, and that the Helm releases (name, revision, status), the stack's
state and the charts folder are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.engine import TOOLS, E2EStack, copy_project, dispose, new_stack, sync_standins


@pytest.fixture(scope="module")
def deployed(engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    scratch = tmp_path_factory.mktemp("bad-input-program")
    project = copy_project(scratch / "project")
    # One external release (a stand-in served on 127.0.0.1 and locked), so the program reads the declaration and the lock.
    sync_standins(project, scratch)
    stack = new_stack(project, engine_env, "local", {"releases": {"mpi-operator": {"enabled": True}}}, prefix="bad-input")
    try:
        result = stack.stack.up(on_output=print, message="e2e: bad-input baseline")
        assert result.summary.result == "succeeded", result.stderr
        yield stack
    finally:
        dispose(stack)


def _releases(stack: E2EStack) -> list[tuple[str, str, int, str]]:
    return sorted((r["namespace"], r["name"], int(r["revision"]), r["status"]) for r in json.loads(stack.helm("list", "-A", "-a", "-o", "json")))


def _resources(stack: E2EStack) -> list[object]:
    """The resources of the stack's state (the checkpoint's time and history may move on a refused update)."""
    resources: list[object] = json.loads(stack.pulumi("stack", "export"))["deployment"].get("resources", [])
    return resources


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _stack_file_edit(change: Callable[[dict[str, object]], None]) -> Callable[[E2EStack], None]:
    def edit(stack: E2EStack) -> None:
        path = stack.project / f"Pulumi.{stack.name}.yaml"
        data = yaml.safe_load(path.read_text())
        change(data["config"])
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return edit


def _file_edit(relative: str, old: str | None, new: str) -> Callable[[E2EStack], None]:
    def edit(stack: E2EStack) -> None:
        path = stack.project / relative
        text = path.read_text() if old is not None else ""
        assert old is None or old in text, f"{relative} lacks {old!r}"
        path.write_text(new if old is None else text.replace(old, new, 1))
    return edit


def _astrago(body: dict[str, object]) -> Callable[[dict[str, object]], None]:
    def change(config: dict[str, object]) -> None:
        config["astrago-deploy:releases"]["astrago"] = body  # type: ignore[index]
    return change


def _circle(stack: E2EStack) -> None:
    """The throwaway stack inherits `local`, whose file inherits the throwaway stack."""
    _stack_file_edit(lambda c: c.update({"astrago-deploy:inherits": "local"}))(stack)
    (stack.project / "Pulumi.local.yaml").write_text(f"config:\n  astrago-deploy:inherits: {stack.name}\n")


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[E2EStack], None]
    expected: tuple[str, ...]


CASES = [
    # sync_standins declared every chart at the stand-in repository on 127.0.0.1.
    Case("external-yaml-unclosed", _file_edit("charts/external.yaml", "repository: http", "repository: [unclosed http"),
         ("charts/external.yaml line ", "not valid YAML")),
    Case("external-yaml-list", _file_edit("charts/external.yaml", None, "- name: harbor\n"), ("external.yaml line 1: (top level): must be a map, not a list",)),
    Case("lock-list", _file_edit("charts/versions.lock", None, "- name: harbor\n"), ("versions.lock line 1: (top level): must be a map, not a list",)),
    Case("chart-yaml-no-version", _file_edit("charts/own/astrago/Chart.yaml", "version: 1.0.0\n", ""), ("Chart.yaml line 1: (top level): missing key version",)),
    Case("chart-yaml-broken", _file_edit("charts/own/astrago/Chart.yaml", None, "apiVersion: v2\nname: astrago\nversion: [1.0.0\n"), ("Chart.yaml line 3: not valid YAML",)),
    Case("external-url", _stack_file_edit(lambda c: c.update({"astrago-deploy:externals": {"keycloak": {"url": "ht!tp//not a url"}}})),
         ("astrago-deploy:externals.keycloak.url: 'ht!tp//not a url' is not an http:// or https:// URL with a host",)),
    Case("plain-password-in-values", _stack_file_edit(_astrago({"values": {"mariadb": {"password": "hunter2"}}})),
         ("astrago-deploy:releases.astrago.values.mariadb.password is a credential", "make secret STACK=")),
    Case("flux-name", _stack_file_edit(_astrago({"helm": {"upgrade": {"remediation": {"strategy": "none"}}}})),
         ("astrago-deploy:releases.astrago.helm.upgrade: Flux's upgrade.* fields were replaced by Helm's flags",)),
    Case("inherits-circle", _circle, ("astrago-deploy:inherits goes round in a circle",)),
    Case("catalog-flux-name", _file_edit("catalog/releases.yaml", "    drift: fail\n", "    drift: fail\n    driftDetection: {mode: enabled}\n"),
         ("catalog/releases.yaml line ", "defaults.helm.driftDetection: driftDetection.mode")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_program_refuses_bad_input_and_nothing_changes(deployed: E2EStack, case: Case) -> None:
    stack = deployed
    def inputs() -> list[Path]:
        return [p for p in [*stack.project.glob("Pulumi.*.yaml"), *(stack.project / "catalog").rglob("*"), *(stack.project / "charts").rglob("*")] if p.is_file()]

    saved = {p: p.read_bytes() for p in inputs()}
    releases, state, charts = _releases(stack), _resources(stack), _tree(stack.project / "charts")
    try:
        case.edit(stack)
        charts_edited = _tree(stack.project / "charts")
        for command in (("preview",), ("up", "--yes")):
            result = subprocess.run([str(TOOLS / "pulumi"), *command, "--stack", stack.name, "--non-interactive"], cwd=stack.project,
                                    env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=600)
            output = result.stdout + result.stderr
            assert result.returncode != 0, output
            assert "cannot be deployed; nothing was changed" in output, output
            for fragment in case.expected:
                assert fragment in output, f"{case.id}: {' '.join(command)} lacks {fragment!r}:\n{output}"
            assert "Traceback" not in output, output
        assert _releases(stack) == releases, "a Helm release changed"
        assert _resources(stack) == state, "the stack's resources changed"
        assert _tree(stack.project / "charts") == charts_edited, "the charts folder changed"
    finally:
        for path in inputs():
            if path not in saved:
                path.unlink()
        for path, data in saved.items():
            path.write_bytes(data)
    assert _tree(stack.project / "charts") == charts
