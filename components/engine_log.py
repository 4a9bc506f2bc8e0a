"""Keep the Pulumi Python SDK's per-resource debug lines off the engine.

The SDK writes about five debug lines for every resource it registers
("registering resource", "resource registration prepared", "beginning rpc
register resource", ...) and sends each one as a synchronous `Log` call to the
engine, on the thread that runs the program; the engine turns each into an
event for the display and every event listener (`--event-log`, the Automation
API). For the 41 resources of the full catalog that is about 200 round trips
per run: 0.07 s of the program's CPU and 0.1 s of every no-change preview
(bench/README.md). Pulumi trimmed the same lines once for this reason
(pulumi/pulumi#7295, behind the SDK's `excessive_debug_output`); the ones left
are the SDK's bookkeeping, not this program's.

Debug lines are shown only with `pulumi ... --debug`; to see the SDK's again,
set ASTRAGO_SDK_DEBUG=1. Every other severity (info, warning, error) passes
through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.runtime import settings
from pulumi.runtime.proto import engine_pb2

KEEP_ENV = "ASTRAGO_SDK_DEBUG"
"""Environment variable that keeps the SDK's debug lines (any non-empty value but 0)."""


class DebugFilter:
    """An engine client that answers debug `Log` calls itself and forwards everything else."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.dropped = 0
        """Debug lines not sent (for tests and curiosity)."""

    def Log(self, request: engine_pb2.LogRequest, *args: Any, **kwargs: Any) -> Any:  # the gRPC method's name
        if request.severity == engine_pb2.DEBUG:
            self.dropped += 1
            return None  # the SDK ignores what Log returns
        return self.engine.Log(request, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def drop_sdk_debug_lines(environ: Mapping[str, str]) -> DebugFilter | None:
    """Route the SDK's debug lines nowhere from now on, unless `environ` asks to keep them.

    Returns the filter now in place, or None when nothing changed (kept on
    request, or no engine connected).
    """
    if environ.get(KEEP_ENV, "") not in ("", "0"):
        return None
    engine = settings.SETTINGS.engine
    if engine is None or isinstance(engine, DebugFilter):
        return engine
    debug_filter = DebugFilter(engine)
    settings.SETTINGS.engine = debug_filter
    return debug_filter
