"""A release that does not become ready is explained by what the cluster recorded; the program ends without a traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2

from components import failure
from model.diagnosis import belongs, findings, helm_outcome, report
from model.identity import RELEASE_TYPE
from tests.conftest import RunProgram

SINCE = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)

# Shapes as kube-scheduler, the PV controller, the Job controller and the ReplicaSet controller write them.
EVENTS: list[dict[str, Any]] = [
    {"type": "Warning", "reason": "FailedScheduling", "lastTimestamp": "2026-12-02T03:01:10Z",
     "involvedObject": {"kind": "Pod", "namespace": "astrago", "name": "astrago-core-6d5f8-x2b9q"},
     "message": "0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: }, 2 node(s) didn't match Pod's node affinity/selector. "
                "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."},
    {"type": "Warning", "reason": "FailedScheduling", "lastTimestamp": "2026-12-02T02:10:00Z",
     "involvedObject": {"kind": "Pod", "namespace": "astrago", "name": "astrago-core-old-aaaaa"}, "message": "from an earlier update"},
    {"type": "Normal", "reason": "FailedBinding", "lastTimestamp": "2026-12-02T03:01:05Z",
     "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "astrago", "name": "astrago-mariadb-data"},
     "message": "no persistent volumes available for this claim and no storage class is set"},
    {"type": "Warning", "reason": "DeadlineExceeded", "lastTimestamp": "2026-12-02T03:02:00Z",
     "involvedObject": {"kind": "Job", "namespace": "astrago", "name": "astrago-db-migrate"}, "message": "Job was active longer than specified deadline"},
    {"type": "Warning", "reason": "FailedCreate", "lastTimestamp": "2026-12-02T03:01:00Z",
     "involvedObject": {"kind": "ReplicaSet", "namespace": "astrago", "name": "astrago-proxy-7c9d"},
     "message": 'Error creating: admission webhook "pods.policy.example" denied the request: image registry not allowed'},
    {"type": "Normal", "reason": "Scheduled", "lastTimestamp": "2026-12-02T03:01:00Z",
     "involvedObject": {"kind": "Pod", "namespace": "astrago", "name": "astrago-ui-1"}, "message": "Successfully assigned"},
    {"type": "Warning", "reason": "FailedScheduling", "lastTimestamp": "2026-12-02T03:01:00Z",
     "involvedObject": {"kind": "Pod", "namespace": "keycloak", "name": "keycloak-addons-job-1"}, "message": "a neighbour's"},
]
OBJECTS: list[dict[str, Any]] = [
    {"kind": "Pod", "metadata": {"name": "astrago-core-6d5f8-x2b9q", "namespace": "astrago"},
     "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]}},
    {"kind": "Pod", "metadata": {"name": "astrago-ui-1", "namespace": "astrago"},
     "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
    {"kind": "PersistentVolumeClaim", "metadata": {"name": "astrago-mariadb-data", "namespace": "astrago"}, "status": {"phase": "Pending"}},
    {"kind": "Job", "metadata": {"name": "astrago-db-migrate", "namespace": "astrago"},
     "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}},
]
HISTORY = [
    {"revision": 1, "updated": "2026-12-01T10:00:00Z", "status": "superseded", "description": "Install complete"},
    {"revision": 2, "updated": "2026-12-02T03:00:30Z", "status": "failed", "description": 'Upgrade "astrago" failed: context deadline exceeded'},
    {"revision": 3, "updated": "2026-12-02T03:10:31Z", "status": "deployed", "description": "Rollback to 1"},
]


def test_each_object_that_was_not_ready_is_named_with_its_reason() -> None:
    lines = [f.line() for f in findings(OBJECTS, EVENTS, "astrago", since=SINCE)]
    assert lines == [
        "Job astrago/astrago-db-migrate: Failed: DeadlineExceeded: Job was active longer than specified deadline",
        "PersistentVolumeClaim astrago/astrago-mariadb-data: Pending: FailedBinding: no persistent volumes available for this claim and no storage class is set",
        "Pod astrago/astrago-core-6d5f8-x2b9q: Pending: FailedScheduling: 0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: }, "
        "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
        'ReplicaSet astrago/astrago-proxy-7c9d: FailedCreate: Error creating: admission webhook "pods.policy.example" denied the request: image registry not allowed',
    ]


def test_objects_of_a_neighbour_release_or_named_in_the_manifest() -> None:
    assert not belongs("keycloak-addons-job-1", "keycloak", neighbours=["keycloak-addons"])
    assert belongs("keycloak-0", "keycloak", neighbours=["keycloak-addons"])
    assert belongs("csi-nfs-controller-7f9-abc", "nfs-provisioner", owned=["csi-nfs-controller"])
    assert not belongs("csi-nfs-controller-7f9-abc", "nfs-provisioner")
    assert belongs("data-astrago-mariadb-0", "astrago", kind="PersistentVolumeClaim")
    assert not belongs("data-astrago-mariadb-0", "astrago", kind="Pod")


def test_helm_says_which_revision_failed_and_what_the_rollback_restored() -> None:
    assert helm_outcome(HISTORY, SINCE) == [
        'Helm: revision 2 failed: Upgrade "astrago" failed: context deadline exceeded',
        "Helm: then rolled back: revision 3 (Rollback to 1) is deployed",
    ]


def test_the_report_carries_job_logs_or_why_there_are_none() -> None:
    found = findings(OBJECTS, EVENTS, "astrago", since=SINCE)
    text = report("astrago", "astrago", helm_outcome(HISTORY, SINCE), found, {"astrago-db-migrate": "logs unavailable (kwok)"})
    print(text)
    assert text.splitlines()[0] == "release astrago (astrago) did not become ready:"
    assert "    logs unavailable (kwok)" in text and "Rollback to 1" in text


def _failing(names: set[str]) -> Any:
    original = MockMonitor.RegisterResource

    def register(self: MockMonitor, request: Any) -> Any:
        response = original(self, request)
        if request.type == RELEASE_TYPE and request.name in names:
            response.result = resource_pb2.Result.FAIL
        return response

    return register


def test_a_failed_release_is_explained_and_the_program_ends_without_a_traceback(run_program: RunProgram, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = "astrago-infrastructure-gpu-operator-addons-release"
    # The engine reports a release whose dependency failed as not successful too (skipped).
    skipped = "astrago-monitoring-gpu-process-exporter-release"
    monkeypatch.setattr(MockMonitor, "RegisterResource", _failing({failed, skipped}))
    explained: list[tuple[str, str]] = []
    monkeypatch.setattr("cli.diagnosis.diagnose", lambda release, namespace, neighbours, since: f"diagnosis of {release} ({sorted(neighbours)})")
    monkeypatch.setattr(pulumi.log, "error", lambda text, resource=None: explained.append(("error", text)))
    monkeypatch.setattr(pulumi.log, "warn", lambda text, resource=None: explained.append(("warn", text)))
    monkeypatch.setattr(failure, "_explained", set())
    monkeypatch.setattr(failure, "_failed", {})
    run = run_program("local")  # raises if an output faulted unrecovered
    assert ("error", "diagnosis of gpu-operator-addons (['gpu-process-exporter'])") in explained, explained
    errors = [text for level, text in explained if level == "error"]
    assert len(errors) == 1, "one explanation, for the release that failed"
    waiting = [text for level, text in explained if level == "warn"]
    assert any("gpu-process-exporter (gpu-operator) was not attempted: it waits for gpu-operator-addons, which failed" in w for w in waiting), waiting
    assert run.module.platform is not None


def test_after_a_failed_make_up_an_unreachable_cluster_is_named_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from commands import diagnose

    refused = subprocess.CompletedProcess(args=["kubectl"], returncode=1, stdout="", stderr="The connection to the server 127.0.0.1:17501 was refused - did you specify the right host or port?")
    monkeypatch.setattr(diagnose, "kubectl", lambda args, timeout_s, check=True: refused)
    monkeypatch.setattr(diagnose, "cluster_server", lambda: "https://127.0.0.1:17501")
    [said] = diagnose.cluster_advice("local", 10)
    assert said.startswith("the cluster at https://127.0.0.1:17501 is unreachable") and "make cluster" in said and "state is untouched" in said
    answered = subprocess.CompletedProcess(args=["kubectl"], returncode=0, stdout="ok", stderr="")
    monkeypatch.setattr(diagnose, "kubectl", lambda args, timeout_s, check=True: answered)
    assert diagnose.cluster_advice("local", 10) == []


class _RpcError(Exception):
    def __init__(self, code: object, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> object:
        return self._code

    def details(self) -> str:
        return self._details


def test_an_error_the_engine_answers_a_registration_with_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import grpc  # type: ignore[import-untyped]
    from pulumi.runtime import settings

    # The SDK's own function (an earlier run of the program in this session switched it).
    sdk = getattr(settings.grpc_error_to_exception, "original", settings.grpc_error_to_exception)
    monkeypatch.setattr(settings, "grpc_error_to_exception", sdk)
    assert failure.engine_errors_as_messages({"ASTRAGO_DEBUG": "1"}) is False
    assert not isinstance(settings.grpc_error_to_exception(_RpcError(grpc.StatusCode.UNKNOWN, "x")), pulumi.RunError)
    assert failure.engine_errors_as_messages({}) is True
    cancelled = settings.grpc_error_to_exception(_RpcError(grpc.StatusCode.UNKNOWN, "resource monitor shut down while waiting on step's done channel"))
    assert isinstance(cancelled, pulumi.RunError) and "resource monitor shut down" in str(cancelled)
    assert isinstance(settings.grpc_error_to_exception(_RpcError(grpc.StatusCode.UNAVAILABLE, "gone")), pulumi.RunError)
