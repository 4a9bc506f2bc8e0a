"""What the program does when the engine reports that a Helm release failed: explain it, and go on.

The engine reports a failed release with the provider's message (Helm's
"context deadline exceeded" after the whole timeout); the SDK then faults
every output of the release with `ResourceRegistrationFailed`. An output
the program passes on (the component's registered outputs, the stack's
`releases` export) would end the program with that exception's Python
traceback. Each output read from a release is therefore recovered here:
the failure is explained once, next to the release in the engine's output
(the objects that were not ready and why, and Helm's rollback;
cli/diagnosis.py), and the output takes the value `failed`.

The same fault reaches the releases that wait for a failed one: the SDK
awaits the URN of each resource in `depends_on` before it registers a
dependant, and that URN is faulted too, so the dependant would never be
registered and the program would stop with the traceback. `dependable`
gives a resource's URN a value even when the resource failed (the URN the
engine gave it, by the rule of model/identity.py), so dependants are
registered and the engine itself skips them (`--continue-on-error`) or stops.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import settings

from model.identity import child_urn

T = TypeVar("T")

# Events from before this update are not its story; a minute of slack for the API server's clock.
STARTED = datetime.now(UTC) - timedelta(seconds=60)
FAILED = "failed"

_namespaces: dict[str, set[str]] = {}
_explained: set[str] = set()
# id() of a failed release's Helm release resource -> the release's name.
_failed: dict[int, str] = {}


def register(namespace: str, release: str) -> None:
    """Note a release of the namespace: its neighbours' objects are not its own (keycloak vs keycloak-addons)."""
    _namespaces.setdefault(namespace, set()).add(release)


def dependable(resource: pulumi.Resource, parent: pulumi.Resource, type_: str, name: str) -> None:
    """Let `resource` (a child of `parent`) be a dependency even when the engine reports it failed: its URN keeps its value."""
    resource.__dict__["urn"] = resource.urn.recover(lambda _error: parent.urn.apply(lambda parent_urn: child_urn(parent_urn, type_, name)))


def explained(output: pulumi.Output[T], release: str, namespace: str, resource: pulumi.Resource, after: Sequence[pulumi.Resource],
              value: T) -> pulumi.Output[T]:
    """`output`, or `value` when the release failed; the first failed output of a release logs the explanation.

    `after`: what the release waits for. When one of those failed, the engine
    did not attempt the release (it reports it failed too): that is said, not diagnosed.
    """
    return output.recover(_explain(release, namespace, resource, after, value))


def _explain(release: str, namespace: str, resource: pulumi.Resource, after: Sequence[pulumi.Resource], value: T) -> Callable[[Exception], T]:
    def recover(error: Exception) -> T:
        if release in _explained:
            return value
        _explained.add(release)
        blocked = sorted({_failed[id(r)] for r in after if id(r) in _failed})
        if blocked:
            _failed[id(resource)] = release
            pulumi.log.warn(f"release {release} ({namespace}) was not attempted: it waits for {', '.join(blocked)}, which failed", resource=resource)
            return value
        _failed[id(resource)] = release
        pulumi.log.error(_text(release, namespace, error), resource=resource)
        return value

    return recover


def _text(release: str, namespace: str, error: Exception) -> str:
    if pulumi.runtime.is_dry_run():
        return f"release {release} ({namespace}): {error}"
    from cli.diagnosis import diagnose  # only on a failure: kubectl and helm calls

    return diagnose(release, namespace, _namespaces.get(namespace, set()) - {release}, since=STARTED)


DEBUG_ENV = "ASTRAGO_DEBUG"
"""Set to 1 to see the SDK's tracebacks again (the same switch as the commands')."""


def engine_errors_as_messages(environ: Mapping[str, str]) -> bool:
    """Make an error the engine returns to a registration end the program with its message, not a traceback.

    When the update is cancelled (Ctrl-C, a stopped CI job) or the engine
    gives up on a step, the resource monitor answers pending registrations
    with an error. The SDK raises it as a plain Exception, which its exec
    shim prints with the program's Python traceback; only "monitor
    unavailable" becomes a `RunError`, printed as one line. Every monitor
    error is the engine's own report, and the engine already shows it, so
    all become `RunError` (message kept). Returns whether the switch is on.
    """
    if environ.get(DEBUG_ENV, "") not in ("", "0"):
        return False
    original = settings.grpc_error_to_exception
    if getattr(original, "astrago", False):
        return True

    def as_message(exn: Any) -> Exception:  # a grpc.RpcError
        error = original(exn)
        return error if isinstance(error, pulumi.RunError) else pulumi.RunError(str(error))

    as_message.astrago = True  # type: ignore[attr-defined]
    as_message.original = original  # type: ignore[attr-defined]
    settings.grpc_error_to_exception = as_message
    return True
