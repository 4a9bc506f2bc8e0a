"""Our lean registrations send the engine exactly what the Kubernetes SDK's classes send.

components/namespace.py and components/helm_release.py register Namespace and
Release without importing the SDK modules that define them (bench/README.md:
import time). Here both ours and the SDK's are registered under mocks with the
same arguments, and the RegisterResource requests are compared field by field
(only the resource name differs), secrets included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from components.helm_release import HelmRelease, HelmReleaseArgs
from components.namespace import Namespace
from model.identity import RELEASE_TYPE
from tests.conftest import RecordingMocks


class RecordingMonitor:
    """Passes every call to the mock monitor and keeps each RegisterResource request."""

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor
        self.requests: dict[str, resource_pb2.RegisterResourceRequest] = {}

    def RegisterResource(self, request: resource_pb2.RegisterResourceRequest) -> Any:  # the gRPC method's name
        self.requests[request.name] = request
        return self.monitor.RegisterResource(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.monitor, name)


@pytest.fixture
def register() -> Iterator[Callable[[Callable[[], None]], dict[str, resource_pb2.RegisterResourceRequest]]]:
    def run(program: Callable[[], None]) -> dict[str, resource_pb2.RegisterResourceRequest]:
        pulumi.runtime.set_mocks(RecordingMocks(), project="astrago-deploy", stack="unit", preview=True)
        recording = RecordingMonitor(settings.SETTINGS.monitor)
        settings.SETTINGS.monitor = recording
        program()
        _sync_await(wait_for_rpcs())
        return recording.requests

    yield run


def _without_name(request: resource_pb2.RegisterResourceRequest) -> resource_pb2.RegisterResourceRequest:
    copy = resource_pb2.RegisterResourceRequest()
    copy.CopyFrom(request)
    # The name, and where each was registered (the call site), differ by nature.
    copy.ClearField("name")
    copy.ClearField("sourcePosition")
    copy.ClearField("stackTrace")
    copy.ClearField("parentStackTraceHandle")
    return copy


def test_helm_release_registers_what_the_sdks_release_registers(register: Callable[..., dict[str, Any]]) -> None:
    from pulumi_kubernetes.helm import v3 as helm

    def values() -> dict[str, Any]:
        return {"image": {"tag": "1.0"}, "auth": {"password": pulumi.Output.secret("s3cr3t")}, "empty": None, "list": [1, "a"]}

    def program() -> None:
        HelmRelease("ours", HelmReleaseArgs(
            name="keycloak", namespace="keycloak", chart="charts/external/keycloak-24.4.1.tgz", values=values(),
            description="chart 24.4.1 sha256:abc; patches sha256:def", postrender="charts/patches/.wrap/keycloak",
            atomic=True, cleanup_on_fail=True, timeout=600, skip_await=False, wait_for_jobs=True, max_history=10,
            create_namespace=False), opts=pulumi.ResourceOptions(import_="keycloak/keycloak"))
        helm.Release("sdk", helm.ReleaseArgs(
            name="keycloak", namespace="keycloak", chart="charts/external/keycloak-24.4.1.tgz", values=values(),
            description="chart 24.4.1 sha256:abc; patches sha256:def", postrender="charts/patches/.wrap/keycloak",
            atomic=True, cleanup_on_fail=True, timeout=600, skip_await=False, wait_for_jobs=True, max_history=10,
            create_namespace=False), opts=pulumi.ResourceOptions(import_="keycloak/keycloak"))

    requests = register(program)
    ours, sdk = requests["ours"], requests["sdk"]
    assert ours.type == sdk.type == RELEASE_TYPE
    assert ours.version == sdk.version and ours.version, (ours.version, sdk.version)
    assert _without_name(ours) == _without_name(sdk), f"ours:\n{ours}\nsdk:\n{sdk}"


def test_namespace_registers_what_the_sdks_namespace_registers(register: Callable[..., dict[str, Any]]) -> None:
    from pulumi_kubernetes.core import v1 as core
    from pulumi_kubernetes.meta import v1 as meta

    labels = {"app.kubernetes.io/managed-by": "astrago-deploy"}

    def program() -> None:
        Namespace("ours", "astrago", labels)
        core.Namespace("sdk", metadata=meta.ObjectMetaArgs(name="astrago", labels=labels))

    requests = register(program)
    assert _without_name(requests["ours"]) == _without_name(requests["sdk"]), f"ours:\n{requests['ours']}\nsdk:\n{requests['sdk']}"
