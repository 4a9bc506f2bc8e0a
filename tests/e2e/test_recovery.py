"""An interrupted `pulumi up`: what it leaves behind, the pre-flight that refuses, `make recover`.

The local stack's settings on a throwaway stack, with astrago made slow to
become ready (a nodeSelector no node has, a 120 s Helm timeout), so an
update is interrupted while Helm waits on it. `pulumi up` runs as a
subprocess, as a person or a CI job runs it, and is stopped three ways:

- SIGINT to the CLI alone (Ctrl-C): the engine cancels, Helm's atomic
  install is undone, nothing is left behind.
- SIGINT to every process of the update (what a container stop or CI
  cancellation sends), a bounded wait, then SIGKILL: the provider dies in
  the middle of the install, the release stays pending-install.
- SIGKILL of every process during an upgrade (a lost machine): the stack's
  lock file and a pending operation stay as well.
- SIGKILL of the CLI alone (`kill -9`) or of its process group, at three
  points of an update (astrago's first install, between tiers, astrago's
  upgrade): the language host, the program and the providers outlive it.
  `make up` is refused and `make diagnose` points to `make recover`, which
  lets them finish or stops them, repairs the stack by itself, and the next
  `make up` ends with a clean preview.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from model.values import deep_merge
from tests.e2e.full_catalog import command
from tests.support.engine import ROOT, TOOLS, E2EStack, dispose, new_stack

# No node has this label: astrago's pods never schedule and Helm waits for its timeout.
BLOCKED = {"astrago": {"values": {"nodeSelector": {"astrago.test/none": "true"}}, "helm": {"timeout": "120s"}}}


def _local_releases(extra: dict[str, Any]) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"]
    return deep_merge(config["astrago-deploy:releases"], extra)


@pytest.fixture
def slow_stack(project: Path, engine_env: dict[str, str]) -> Iterator[E2EStack]:
    """The local stack's settings; astrago cannot become ready."""
    stack = new_stack(project, engine_env, "local", {"releases": _local_releases(BLOCKED)}, prefix="e2e-recover")
    try:
        yield stack
    finally:
        # Whatever a test left half-done: recover (bounded) so destroy can run.
        command("recover", stack, timeout_s=300)
        dispose(stack)


def _set_releases(stack: E2EStack, releases: dict[str, Any]) -> None:
    """Write the stack file's releases as a person edits it (the commands read the file itself)."""
    path = stack.project / f"Pulumi.{stack.name}.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["config"]["astrago-deploy:releases"] = releases
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def _unblock(stack: E2EStack) -> None:
    """Revert the blocking change: astrago as the local stack has it."""
    _set_releases(stack, _local_releases({}))


def _block(stack: E2EStack) -> None:
    _set_releases(stack, _local_releases(BLOCKED))


def _start_up(stack: E2EStack, log: Path) -> subprocess.Popen[bytes]:
    """`pulumi up` as a person runs it, in its own session so the test can signal it alone."""
    with log.open("wb") as out:
        return subprocess.Popen([str(TOOLS / "pulumi"), "up", "--yes", "--skip-preview", "--stack", stack.name, "--non-interactive"],
                                cwd=stack.project, env={**os.environ, **stack.env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _astrago_status(stack: E2EStack) -> str | None:
    rows = json.loads(stack.helm("list", "--namespace", "astrago", "--all", "-o", "json"))
    return next((r["status"] for r in rows if r["name"] == "astrago"), None)


def _wait_for_status(stack: E2EStack, prefix: str, up: subprocess.Popen[bytes], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _astrago_status(stack)
        if status and status.startswith(prefix):
            return status
        assert up.poll() is None, f"`pulumi up` ended (exit {up.returncode}) before astrago became {prefix}*"
        time.sleep(0.2)
    raise AssertionError(f"astrago did not become {prefix}* within {timeout_s} s (status {_astrago_status(stack)})")


def _tree(pid: int) -> list[int]:
    """pid and every process below it (the CLI's plugins run in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _stop(up: subprocess.Popen[bytes], pids: list[int], grace_s: float) -> None:
    """Wait up to grace_s for the update's processes to end, then SIGKILL the rest; reap the CLI."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        up.poll()
        time.sleep(0.1)
    _signal([p for p in pids if _alive(p)], signal.SIGKILL)
    up.wait(timeout=30)


def _locks(stack: E2EStack) -> list[Path]:
    backend = Path(stack.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    return list((backend / ".pulumi" / "locks").glob(f"*/*/{stack.name}/*.json"))


def _pending_operations(stack: E2EStack) -> list[dict[str, Any]]:
    return list(json.loads(stack.pulumi("stack", "export"))["deployment"].get("pending_operations") or [])


def _refused(action: Any) -> str:
    with pytest.raises(auto.CommandError) as refused:
        action()
    return str(refused.value)


def test_one_ctrl_c_cancels_cleanly(slow_stack: E2EStack, tmp_path: Path) -> None:
    up = _start_up(slow_stack, tmp_path / "up.log")
    _wait_for_status(slow_stack, "pending-install", up)
    _signal([up.pid], signal.SIGINT)
    up.wait(timeout=60)
    log = (tmp_path / "up.log").read_text()
    assert up.returncode != 0 and "received; cancelling" in log, log[-1500:]
    # Helm's atomic install is undone on cancel: no release, no lock, no pending operation.
    assert _astrago_status(slow_stack) is None
    assert _locks(slow_stack) == [] and _pending_operations(slow_stack) == []
    _unblock(slow_stack)
    result = slow_stack.stack.up(color="never", message="e2e: after one Ctrl-C")
    assert result.summary.result == "succeeded" and _astrago_status(slow_stack) == "deployed"


def test_an_update_stopped_like_a_container_is_refused_then_recovered(slow_stack: E2EStack, tmp_path: Path) -> None:
    up = _start_up(slow_stack, tmp_path / "up.log")
    _wait_for_status(slow_stack, "pending-install", up)
    processes = _tree(up.pid)
    assert len(processes) >= 3, f"the CLI, its language host and provider: {processes}"
    _signal(processes, signal.SIGINT)
    _stop(up, processes, grace_s=15)
    assert _astrago_status(slow_stack) == "pending-install", "the provider died in the middle of the install"
    history = slow_stack.helm("history", "astrago", "--namespace", "astrago", "-o", "json")

    refused = _refused(lambda: slow_stack.stack.preview(color="never"))
    assert "Helm release 'astrago' in namespace 'astrago' is pending-install (revision 1)" in refused, refused[-2000:]
    assert f"make recover STACK={slow_stack.name}" in refused
    refused = _refused(lambda: slow_stack.stack.up(color="never"))
    assert "is pending-install" in refused and "nothing was changed" in refused
    assert slow_stack.helm("history", "astrago", "--namespace", "astrago", "-o", "json") == history, "the refused update did not touch Helm"

    recovered = command("recover", slow_stack)
    print(f"\nmake recover (pending-install): {recovered.seconds:.1f}s\n{recovered.out}")
    assert recovered.code == 0, recovered.out + recovered.err
    assert "astrago (astrago): pending-install revision 1 never deployed: uninstalled" in recovered.out
    assert f"next: make up STACK={slow_stack.name}" in recovered.out
    _unblock(slow_stack)
    result = slow_stack.stack.up(color="never", message="e2e: after recovery")
    assert result.summary.result == "succeeded" and _astrago_status(slow_stack) == "deployed"
    assert command("drift", slow_stack).code == 0
    assert command("recover", slow_stack).out.startswith("recover: nothing to repair")


def test_a_killed_upgrade_leaves_a_lock_and_a_pending_operation_that_recover_clears(slow_stack: E2EStack, tmp_path: Path) -> None:
    _unblock(slow_stack)
    slow_stack.stack.up(color="never", message="e2e: astrago ready")
    _block(slow_stack)
    up = _start_up(slow_stack, tmp_path / "up.log")
    try:
        _wait_for_status(slow_stack, "pending-upgrade", up)
        # While the update runs, recover refuses and changes nothing.
        busy = command("recover", slow_stack)
        assert busy.code == 2 and "locked by a running update" in busy.err, busy.out + busy.err
        assert _astrago_status(slow_stack) == "pending-upgrade"
    finally:
        processes = _tree(up.pid)
        _signal(processes, signal.SIGKILL)
        _stop(up, processes, grace_s=5)
    assert _astrago_status(slow_stack) == "pending-upgrade"
    assert len(_locks(slow_stack)) == 1, "the killed CLI left its lock"
    [operation] = _pending_operations(slow_stack)
    assert operation["type"] == "updating" and operation["resource"]["urn"].endswith("astrago-applications-astrago-release")

    locked = _refused(lambda: slow_stack.stack.up(color="never"))
    assert "the stack is currently locked" in locked, locked[-1500:]
    refused = _refused(lambda: slow_stack.stack.preview(color="never"))
    assert "is pending-upgrade" in refused and "make recover" in refused

    recovered = command("recover", slow_stack)
    print(f"\nmake recover (lock, pending operation, pending-upgrade): {recovered.seconds:.1f}s\n{recovered.out}")
    assert recovered.code == 0, recovered.out + recovered.err
    assert "removed 1 stale lock(s)" in recovered.out
    assert "pending-upgrade revision 2: rolled back to revision 1" in recovered.out
    assert "removed 1 pending operation(s)" in recovered.out and "updating astrago-applications-astrago-release" in recovered.out
    assert _locks(slow_stack) == [] and _pending_operations(slow_stack) == []

    _unblock(slow_stack)
    result = slow_stack.stack.up(color="never", message="e2e: after recovery")
    assert result.summary.result == "succeeded", result.stderr
    assert "pending operations" not in result.stdout
    assert _astrago_status(slow_stack) == "deployed"
    again = slow_stack.stack.preview(expect_no_changes=True, color="never")
    assert set(again.change_summary) == {auto.OpType.SAME}
    assert command("drift", slow_stack).code == 0


def _kill(up: subprocess.Popen[bytes], how: str) -> list[int]:
    """SIGKILL the CLI alone, or its whole process group; returns the update's other processes, which outlive it."""
    processes = _tree(up.pid)
    if how == "cli":
        os.kill(up.pid, signal.SIGKILL)
    else:
        os.killpg(os.getpgid(up.pid), signal.SIGKILL)
    up.wait(timeout=30)
    return [p for p in processes[1:] if _alive(p)]


def _wait_for(stack: E2EStack, release: str, namespace: str, statuses: tuple[str, ...], up: subprocess.Popen[bytes], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = json.loads(stack.helm("list", "--namespace", namespace, "--all", "-o", "json"))
        status = next((str(r["status"]) for r in rows if r["name"] == release), None)
        if status in statuses:
            return str(status)
        assert up.poll() is None, f"`pulumi up` ended (exit {up.returncode}) before {release} became one of {statuses}"
        time.sleep(0.05)
    raise AssertionError(f"{release} did not become one of {statuses} within {timeout_s} s")


# Where the update is killed: astrago's first install (the last tier, Helm waiting), right after the
# monitoring tier's release deployed (the next tiers start within milliseconds: wherever the kill lands),
# and astrago's upgrade.
POINTS = ("first-install", "between-tiers", "upgrade")


@pytest.mark.parametrize("how", ["cli", "group"])
@pytest.mark.parametrize("point", POINTS)
def test_a_killed_update_is_repaired_by_make_recover_alone(slow_stack: E2EStack, tmp_path: Path, point: str, how: str) -> None:
    if point == "upgrade":
        _unblock(slow_stack)
        assert slow_stack.stack.up(color="never", message="e2e: astrago ready").summary.result == "succeeded"
        _block(slow_stack)
    up = _start_up(slow_stack, tmp_path / "up.log")
    try:
        if point == "between-tiers":
            _wait_for(slow_stack, "gpu-process-exporter", "gpu-operator", ("deployed",), up)
        else:
            _wait_for(slow_stack, "astrago", "astrago", ("pending-upgrade" if point == "upgrade" else "pending-install",), up)
    finally:
        left = _kill(up, how)
    # While Helm waits, the plugins outlive the CLI; between tiers they may have nothing to finish and end by themselves.
    assert left or point == "between-tiers", f"SIGKILL of the {how} leaves the update's plugins running"

    # `make up` on what is left: refused with the way out.
    locked = _refused(lambda: slow_stack.stack.up(color="never"))
    assert "locked" in locked or "make recover" in locked, locked[-1500:]
    advice = command("diagnose", slow_stack)
    print(f"\nmake diagnose after kill ({point}, {how}):\n{advice.err}")
    assert advice.code == 1 and f"make recover STACK={slow_stack.name}" in advice.err, advice.out + advice.err

    recovered = command("recover", slow_stack)
    print(f"make recover after kill ({point}, {how}): {recovered.seconds:.1f}s\n{recovered.out}{recovered.err}")
    assert recovered.code == 0, recovered.out + recovered.err
    assert "process(es)" in recovered.out or not any(_alive(p) for p in left), "recover dealt with the leftover processes itself"
    assert not any(_alive(p) for p in left), "no process of the killed update is left"
    assert _locks(slow_stack) == [] and _pending_operations(slow_stack) == []

    _unblock(slow_stack)
    result = slow_stack.stack.up(color="never", message=f"e2e: after kill ({point}, {how})")
    assert result.summary.result == "succeeded", result.stderr
    assert _astrago_status(slow_stack) == "deployed"
    again = slow_stack.stack.preview(expect_no_changes=True, color="never")
    assert set(again.change_summary) == {auto.OpType.SAME}
