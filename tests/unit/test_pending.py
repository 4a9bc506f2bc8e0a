"""The pending-release pre-flight: kubectl's table read right, the message, the call it makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from model.errors import InputError
from model.pending import (
    PendingQuery,
    PendingRelease,
    Runner,
    check_not_pending,
    describe,
    find_pending,
    kubectl_command,
    parse_release_table,
)

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


def test_an_unreachable_cluster_only_warns() -> None:
    _, run = _runner("", returncode=1, stderr="The connection to the server 127.0.0.1:6443 was refused")
    warnings: list[str] = []
    check_not_pending("dev", [("astrago", "astrago")], warnings.append, run=run)
    assert len(warnings) == 1 and "was refused" in warnings[0]


def test_no_release_pending_passes_quietly() -> None:
    _, run = _runner(TABLE)
    warnings: list[str] = []
    check_not_pending("dev", [("astrago", "astrago")], warnings.append, run=run)
    assert warnings == []


def _fake_kubectl(tmp_path: Path, script: str) -> str:
    """A `kubectl` on PATH that runs `script` (sh); returns the PATH to use."""
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\n" + script)
    kubectl.chmod(0o755)
    return f"{tmp_path}:/usr/bin:/bin"


def test_a_query_started_early_answers_the_check_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "table.txt"
    table.write_text(TABLE)
    monkeypatch.setenv("PATH", _fake_kubectl(tmp_path, f'echo "$@" > {tmp_path}/args; cat {table}\n'))
    query = PendingQuery(timeout_s=20)
    with pytest.raises(InputError) as refused:
        check_not_pending("dev", [("keycloak", "keycloak-addons")], pytest.fail, run=query.run)
    assert "'keycloak-addons'" in str(refused.value)
    args = (tmp_path / "args").read_text()
    assert "--selector owner=helm " in args, f"one call for every Helm release: {args}"


def test_a_query_the_program_never_reads_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _fake_kubectl(tmp_path, "exec sleep 600\n"))
    query = PendingQuery(timeout_s=20)
    assert query.process is not None and query.process.poll() is None
    query.close()
    assert query.process.poll() is not None, "close() must end the kubectl call"


def test_a_query_without_kubectl_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    warnings: list[str] = []
    check_not_pending("dev", [("astrago", "astrago")], warnings.append, run=PendingQuery().run)
    assert len(warnings) == 1 and "kubectl is not on PATH" in warnings[0]
