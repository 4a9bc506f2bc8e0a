"""The pending-release pre-flight: kubectl's table read right, the message, the call it makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli import pending
from cli.pending import (
    PendingQuery,
    PendingRelease,
    Runner,
    check_not_pending,
    describe,
    find_pending,
    kubectl_command,
    parse_release_table,
)
from cli.process import ToolError
from model.errors import InputError

# Captured from `kubectl get secrets -A -l 'owner=helm,...' -L name,status,version --no-headers` on the
# local cluster after a rollback: revision 2 stays pending-upgrade, revision 3 is the one that counts.
TABLE = """\
astrago    sh.helm.release.v1.astrago.v1           helm.sh/release.v1   1     3m28s   astrago           superseded        1
astrago    sh.helm.release.v1.astrago.v2           helm.sh/release.v1   1     2m31s   astrago           pending-upgrade   2
astrago    sh.helm.release.v1.astrago.v3           helm.sh/release.v1   1     2m24s   astrago           deployed          3
keycloak   sh.helm.release.v1.keycloak-addons.v1   helm.sh/release.v1   1     8m12s   keycloak-addons   pending-install   1
other      sh.helm.release.v1.astrago.v1           helm.sh/release.v1   1     8m12s   astrago           pending-install   1
"""


def _runner(stdout: str, returncode: int = 0, stderr: str = "") -> tuple[list[list[str]], Runner]:
    calls: list[list[str]] = []

    def run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    return calls, run


def test_only_the_latest_revision_of_each_release_counts() -> None:
    latest = parse_release_table(TABLE)
    assert latest[("astrago", "astrago")] == (3, "deployed")
    assert latest[("keycloak", "keycloak-addons")] == (1, "pending-install")


def test_pending_releases_of_the_stack_are_found_and_others_ignored() -> None:
    calls, run = _runner(TABLE)
    found = find_pending([("astrago", "astrago"), ("keycloak", "keycloak-addons")], run=run)
    # The release named astrago in namespace `other` is not this stack's.
    assert found == [PendingRelease(namespace="keycloak", name="keycloak-addons", status="pending-install", revision=1)]
    assert len(calls) == 1, "one kubectl call"


def test_the_call_asks_for_metadata_only_with_a_timeout() -> None:
    command = kubectl_command(["keycloak-addons", "astrago"], 20)
    assert command[:3] == ["kubectl", "get", "secrets"]
    assert "owner=helm,name in (astrago,keycloak-addons)" in command
    # Table output: the API server sends PartialObjectMetadata, never the release (values, secrets) itself.
    assert not any(arg.startswith(("-o", "--output")) for arg in command), command
    assert "--request-timeout=20s" in command


def test_a_pending_release_stops_the_program_with_the_recovery_command() -> None:
    _, run = _runner(TABLE)
    warnings: list[str] = []
    with pytest.raises(InputError) as refused:
        check_not_pending("dev", [("keycloak", "keycloak-addons")], warnings.append, run=run)
    message = str(refused.value)
    assert "'keycloak-addons'" in message and "pending-install" in message and "revision 1" in message
    assert "make recover STACK=dev" in message and "make up STACK=dev" in message
    assert "uninstall it" in message
    assert warnings == []


def test_an_interrupted_upgrade_is_rolled_back_in_the_message() -> None:
    text = describe(PendingRelease("astrago", "astrago", "pending-upgrade", 4), "prod")
    assert "roll it back to its last deployed revision" in text and "another operation" in text


def test_an_unreachable_cluster_is_refused_with_its_server_and_what_to_do() -> None:
    refused_by = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
    _, run = _runner("", returncode=1, stderr=refused_by)
    with pytest.raises(InputError) as refused:
        check_not_pending("local", [("astrago", "astrago")], pytest.fail, run=run, server=lambda: "https://127.0.0.1:6443")
    message = str(refused.value)
    print(message)
    assert "the cluster at https://127.0.0.1:6443 is unreachable" in message and "was refused" in message
    assert "make cluster" in message and "KUBECONFIG" in message and "state is untouched" in message
    assert "do not set PULUMI_K8S_DELETE_UNREACHABLE" in message


def test_a_cluster_that_does_not_answer_in_time_is_unreachable_too() -> None:
    _, run = _runner("", returncode=1, stderr="Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout")
    with pytest.raises(InputError) as refused:
        check_not_pending("prod", [("astrago", "astrago")], pytest.fail, run=run, server=lambda: "https://10.0.0.1:6443")
    assert "https://10.0.0.1:6443 is unreachable" in str(refused.value) and "make cluster" not in str(refused.value)


def test_a_cluster_that_answers_with_an_error_only_warns() -> None:
    _, run = _runner("", returncode=1, stderr='Error from server (Forbidden): secrets is forbidden: User "ci" cannot list resource "secrets"')
    warnings: list[str] = []
    check_not_pending("dev", [("astrago", "astrago")], warnings.append, run=run, server=pytest.fail)
    assert len(warnings) == 1 and "Forbidden" in warnings[0]


def test_no_release_pending_passes_quietly() -> None:
    _, run = _runner(TABLE)
    warnings: list[str] = []
    check_not_pending("dev", [("astrago", "astrago")], warnings.append, run=run)
    assert warnings == []


def _fake_kubectl(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned `kubectl` replaced by one that runs `script` (sh)."""
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\n" + script)
    kubectl.chmod(0o755)
    monkeypatch.setattr(pending, "tool", lambda name: str(kubectl) if name == "kubectl" else pytest.fail(name))


def test_a_query_started_early_answers_the_check_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "table.txt"
    table.write_text(TABLE)
    _fake_kubectl(tmp_path, f'echo "$@" > {tmp_path}/args; cat {table}\n', monkeypatch)
    query = PendingQuery(timeout_s=20)
    with pytest.raises(InputError) as refused:
        check_not_pending("dev", [("keycloak", "keycloak-addons")], pytest.fail, run=query.run)
    assert "'keycloak-addons'" in str(refused.value)
    args = (tmp_path / "args").read_text()
    assert "--selector owner=helm " in args, f"one call for every Helm release: {args}"


def test_a_query_the_program_never_reads_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_kubectl(tmp_path, "exec sleep 600\n", monkeypatch)
    query = PendingQuery(timeout_s=20)
    assert query.process is not None and query.process.poll() is None
    query.close()
    assert query.process.poll() is not None, "close() must end the kubectl call"


def test_a_query_without_the_pinned_kubectl_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending, "tool", lambda name: (_ for _ in ()).throw(ToolError(f"{name} is not installed in {tmp_path}: run `make setup`")))
    warnings: list[str] = []
    check_not_pending("dev", [("astrago", "astrago")], warnings.append, run=PendingQuery().run)
    assert len(warnings) == 1 and "kubectl is not installed" in warnings[0] and "make setup" in warnings[0]


def test_the_query_runs_the_pinned_kubectl_never_one_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_kubectl(tmp_path, "exit 0\n", monkeypatch)
    monkeypatch.setenv("PATH", "/nonexistent")
    query = PendingQuery(timeout_s=5)
    assert query.command[0] == str(tmp_path / "kubectl")
    query.close()
