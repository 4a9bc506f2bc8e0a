"""The SDK's debug lines stay in the program; every other severity reaches the engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings
from pulumi.runtime.proto import engine_pb2

from components.engine_log import KEEP_ENV, DebugFilter, drop_sdk_debug_lines


class RecordingEngine:
    """Stands in for the engine's gRPC client: records each Log request."""

    def __init__(self) -> None:
        self.logged: list[engine_pb2.LogRequest] = []

    def Log(self, request: engine_pb2.LogRequest) -> None:  # the gRPC method's name
        self.logged.append(request)

    def GetRootResource(self, _request: Any) -> str:
        return "root"


@pytest.fixture
def engine() -> Iterator[RecordingEngine]:
    before = settings.SETTINGS.engine
    recording = RecordingEngine()
    settings.SETTINGS.engine = recording
    try:
        yield recording
    finally:
        settings.SETTINGS.engine = before


def test_debug_lines_are_not_sent_to_the_engine(engine: RecordingEngine) -> None:
    installed = drop_sdk_debug_lines({})
    pulumi.log.debug("registering resource: ty=x")
    assert isinstance(installed, DebugFilter) and installed.dropped == 1
    assert engine.logged == [], f"debug lines reached the engine: {[r.message for r in engine.logged]}"


def test_info_warnings_and_errors_still_reach_the_engine(engine: RecordingEngine) -> None:
    drop_sdk_debug_lines({})
    pulumi.log.info("i")
    pulumi.log.warn("w")
    pulumi.log.error("e")
    assert [(r.severity, r.message) for r in engine.logged] == [
        (engine_pb2.INFO, "i"), (engine_pb2.WARNING, "w"), (engine_pb2.ERROR, "e")]


def test_other_engine_calls_pass_through(engine: RecordingEngine) -> None:
    drop_sdk_debug_lines({})
    assert settings.SETTINGS.engine.GetRootResource(None) == "root"


@pytest.mark.parametrize("value", ["1", "yes"])
def test_the_environment_keeps_the_debug_lines(engine: RecordingEngine, value: str) -> None:
    assert drop_sdk_debug_lines({KEEP_ENV: value}) is None
    pulumi.log.debug("kept")
    assert [r.message for r in engine.logged] == ["kept"]


def test_installing_twice_wraps_once(engine: RecordingEngine) -> None:
    first = drop_sdk_debug_lines({KEEP_ENV: "0"})
    second = drop_sdk_debug_lines({})
    assert first is second and isinstance(first, DebugFilter) and first.engine is engine
