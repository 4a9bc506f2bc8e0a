"""Which processes `make recover` may stop: only those of this project's interrupted update of this stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli.leftovers import Process, alive, find_leftovers, wait_then_stop
from commands.recover import refresh_args
from model.identity import RELEASE_TYPE, STACK_TYPE, release_urn, urn

ROOT = Path("/work/project")
BACKEND = "file:///work/project/.state/backend"
ENV = {"PULUMI_BACKEND_URL": BACKEND}
ENGINE = "127.0.0.1:40001"


def _p(pid: int, ppid: int, *argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Process:
    return Process(pid=pid, ppid=ppid, argv=argv, cwd=str(cwd), environ=ENV if env is None else env)


def _update(first_pid: int, parent: int, stack: str, engine: str = ENGINE) -> list[Process]:
    """What one update runs: language host, the program under it (and its policy pack), two providers."""
    host = _p(first_pid, parent, "/p/.tools/bin/pulumi-language-python", engine)
    program = _p(first_pid + 1, first_pid, "/p/.venv/bin/python", "-u", "/p/.tools/bin/pulumi-language-python-exec",
                 "--stack", stack, "--engine", engine, "--monitor", "127.0.0.1:40002", ".")
    helm = _p(first_pid + 2, first_pid + 1, "/p/.tools/bin/helm", "version")
    kubernetes = _p(first_pid + 3, parent, "/p/.tools/pulumi-home/plugins/resource-kubernetes-v4.25.0/pulumi-resource-kubernetes", engine)
    hooks = _p(first_pid + 4, parent, "/p/.tools/bin/pulumi-resource-astrago-hooks", engine)
    return [host, program, helm, kubernetes, hooks]


def _table(*groups: list[Process]) -> dict[int, Process]:
    init = _p(1, 0, "/sbin/init", cwd=Path("/"), env={})
    return {p.pid: p for p in [init, *(p for g in groups for p in g)]}


def test_the_processes_of_a_killed_cli_are_found_with_their_children() -> None:
    table = _table(_update(100, 1, "dev"))
    mine, others = find_leftovers(ROOT, BACKEND, "dev", table)
    assert [p.pid for p in mine] == [100, 101, 102, 103, 104] and others == []
    assert [p.program for p in mine][:2] == ["pulumi-language-python", "pulumi-language-python-exec"]


def test_a_running_update_and_other_projects_and_backends_are_left_alone() -> None:
    cli = _p(50, 1, "/p/.tools/bin/pulumi", "up", "--stack", "dev")
    running = _update(100, 50, "dev")
    elsewhere = [_p(p.pid + 100, 1, *p.argv, cwd=Path("/work/other")) for p in _update(100, 1, "dev", "127.0.0.1:40100")]
    other_backend = [_p(p.pid + 200, 1, *p.argv, env={"PULUMI_BACKEND_URL": "file:///tmp/b"}) for p in _update(100, 1, "dev", "127.0.0.1:40200")]
    table = _table([cli], running, elsewhere, other_backend)
    assert find_leftovers(ROOT, BACKEND, "dev", table) == ([], [])


def test_a_killed_update_of_another_stack_is_not_this_stacks() -> None:
    table = _table(_update(100, 1, "dev"), _update(200, 1, "prod", "127.0.0.1:40009"))
    mine, others = find_leftovers(ROOT, BACKEND, "dev", table)
    assert {p.pid for p in mine} == {100, 101, 102, 103, 104}
    assert {p.pid for p in others} == {200, 201, 202, 203, 204}


def test_leftovers_get_their_time_then_are_stopped() -> None:
    quick = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
    try:

        def running(pid: int) -> bool:
            for child in (quick, stubborn):
                if child.pid == pid:
                    child.poll()
            return alive(pid)

        ended, stopped = wait_then_stop([quick.pid, stubborn.pid], wait_s=2, grace_s=0.5, is_alive=running)
        assert ended == [quick.pid] and stopped == [stubborn.pid]
        assert stubborn.wait(timeout=10) == -9, "SIGTERM ignored: SIGKILL"
    finally:
        stubborn.kill()
        quick.kill()


def test_recovery_uses_the_clis_own_flags() -> None:
    release = release_urn("dev", "applications", "astrago")
    created = release_urn("dev", "security", "keycloak-addons")
    stack_urn = urn("dev", (), STACK_TYPE, "astrago-deploy-dev")
    state = {"deployment": {"resources": [
        {"urn": stack_urn, "type": STACK_TYPE},
        {"urn": release, "type": RELEASE_TYPE, "inputs": {"namespace": "astrago", "name": "astrago"}},
    ]}}
    ops = [{"type": "updating", "resource": {"urn": release}}, {"type": "creating", "resource": {"urn": created}}]
    command = refresh_args("dev", state, ops, [("astrago", "astrago")], [(created, "keycloak/keycloak-addons")])
    assert command[:2] == ["refresh", "--yes"] and "--clear-pending-creates" in command
    assert command[command.index("--import-pending-creates") + 1] == created
    targets = [command[i + 1] for i, arg in enumerate(command) if arg == "--target"]
    assert sorted(targets) == sorted([release, created])
    only_clear = refresh_args("dev", state, [{"type": "creating", "resource": {"urn": created}}], [], [])
    assert [only_clear[i + 1] for i, arg in enumerate(only_clear) if arg == "--target"] == [stack_urn], "never an untargeted refresh"
