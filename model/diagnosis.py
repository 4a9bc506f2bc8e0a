"""Why a Helm release did not become ready: plain functions of what Helm and the cluster recorded.

Helm's own message after its wait is "context deadline exceeded". What the
cluster knows is more useful: the scheduler's FailedScheduling event names
the taint or the node selector, the volume controller's event says why a
claim stays Pending, a Job's conditions say it failed and why, a
ReplicaSet's FailedCreate event names the admission webhook that refused
its pods, and Helm's history says which revision failed and what the
rollback that followed restored. These functions turn those records
(`helm history -o json`, `kubectl get ... -o json`) into one line per
object; cli/diagnosis.py reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Normal events that still explain a claim that waits (no provisioner, no matching volume).
PVC_WAIT_REASONS = ("FailedBinding", "ExternalProvisioning", "ProvisioningFailed", "WaitForPodScheduled")


@dataclass(frozen=True)
class Finding:
    """One object that was not ready, and why."""

    kind: str
    namespace: str
    name: str
    state: str
    """Pending, Failed, refused, ... ('' when only an event says something)."""
    reason: str
    """The event or condition: `Reason: message`."""

    def line(self) -> str:
        where = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
        return f"{where}: {self.state + ': ' if self.state else ''}{self.reason}"


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as Kubernetes and Helm write it (None when absent or unreadable)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def event_time(event: Mapping[str, Any]) -> datetime | None:
    return parse_time(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
                      or (event.get("metadata") or {}).get("creationTimestamp"))


def belongs(name: str, release: str, neighbours: Iterable[str] = (), owned: Iterable[str] = (), kind: str = "") -> bool:
    """Whether an object (or a pod of it) is the release's: named in its manifest, or after the release as charts do.

    `neighbours` are the other releases of the namespace: keycloak's objects
    are not keycloak-addons'. A StatefulSet's claims are named
    `<template>-<statefulset>-<ordinal>`: the release's name may follow the template's.
    """

    def named(prefix: str) -> bool:
        if name == prefix or name.startswith(f"{prefix}-"):
            return True
        return kind == "PersistentVolumeClaim" and f"-{prefix}-" in name

    if any(named(own) for own in owned):
        return True
    if not named(release):
        return False
    return not any(len(other) > len(release) and named(other) for other in neighbours)


def helm_outcome(history: Sequence[Mapping[str, Any]], since: datetime | None) -> list[str]:
    """What Helm did in this update: the revision that failed, and the rollback after it, if any."""
    rows = sorted(history, key=lambda r: int(r.get("revision") or 0))
    recent = [r for r in rows if since is None or (parse_time(str(r.get("updated") or "")) or since) >= since]
    lines = []
    for row in recent:
        status, description = str(row.get("status") or ""), str(row.get("description") or "").strip()
        if status == "failed":
            lines.append(f"Helm: revision {row.get('revision')} failed: {description or 'no description'}")
        elif description.startswith("Rollback to"):
            lines.append(f"Helm: then rolled back: revision {row.get('revision')} ({description}) is {status}")
    return lines


def findings(objects: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], release: str,
             neighbours: Iterable[str] = (), owned: Iterable[str] = (), since: datetime | None = None) -> list[Finding]:
    """The release's objects that were not ready (pods, claims, Jobs) and the warnings about them, one per object."""
    neighbours, owned = tuple(neighbours), tuple(owned)
    found: dict[tuple[str, str], Finding] = {}
    latest: dict[tuple[str, str], tuple[datetime | None, Mapping[str, Any]]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        kind, name = str(involved.get("kind") or ""), str(involved.get("name") or "")
        when = event_time(event)
        if not belongs(name, release, neighbours, owned, kind) or (since is not None and when is not None and when < since):
            continue
        warning = event.get("type") == "Warning" or (kind == "PersistentVolumeClaim" and event.get("reason") in PVC_WAIT_REASONS)
        if not warning:
            continue
        key = (kind, name)
        before = latest[key][0] if key in latest else None
        if key not in latest or (when is not None and (before is None or when >= before)):
            latest[key] = (when, event)
    for (kind, name), (_, event) in latest.items():
        namespace = str((event.get("involvedObject") or {}).get("namespace") or "")
        found[(kind, name)] = Finding(kind, namespace, name, "", f"{event.get('reason')}: {str(event.get('message') or '').strip()}")
    for obj in objects:
        kind, meta, status = str(obj.get("kind") or ""), obj.get("metadata") or {}, obj.get("status") or {}
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        if not belongs(name, release, neighbours, owned, kind):
            continue
        state, reason = _object_state(kind, status)
        if not state:
            continue
        noted = found.get((kind, name))
        found[(kind, name)] = Finding(kind, namespace, name, state, noted.reason if noted else reason or "no event recorded")
    return sorted(found.values(), key=lambda f: (f.kind, f.name))


def _object_state(kind: str, status: Mapping[str, Any]) -> tuple[str, str]:
    """(state, reason from the object itself) of an object that is not ready; ('', '') for one that is."""
    conditions = {str(c.get("type")): c for c in status.get("conditions") or []}
    if kind == "Pod":
        phase = str(status.get("phase") or "")
        scheduled = conditions.get("PodScheduled") or {}
        if phase == "Pending":
            if scheduled.get("status") == "False":
                return "Pending", f"{scheduled.get('reason')}: {scheduled.get('message', '')}".strip()
            return "Pending", ""
        if phase == "Failed":
            return "Failed", str(status.get("reason") or status.get("message") or "")
        ready = conditions.get("Ready") or {}
        if phase == "Running" and ready.get("status") == "False":
            return "not ready", str(ready.get("message") or ready.get("reason") or "")
        return "", ""
    if kind == "PersistentVolumeClaim":
        return ("Pending", "") if status.get("phase") == "Pending" else ("", "")
    if kind == "Job":
        failed = conditions.get("Failed") or {}
        if failed.get("status") == "True":
            return "Failed", f"{failed.get('reason')}: {failed.get('message', '')}".strip()
        return "", ""
    return "", ""


def report(release: str, namespace: str, outcome: Sequence[str], found: Sequence[Finding], logs: Mapping[str, str]) -> str:
    """The whole explanation of one release, a line per fact; logs: Job name -> its last lines or why there are none."""
    lines = [f"release {release} ({namespace}) did not become ready:"]
    # Pods that fail for the same reason (replicas, one per workload) are one line.
    pods: dict[tuple[str, str, str], list[str]] = {}
    for finding in found:
        if finding.kind == "Pod":
            pods.setdefault((finding.namespace, finding.state, finding.reason), []).append(finding.name)
            continue
        lines.append(f"  {finding.line()}")
        if finding.kind == "Job" and finding.name in logs:
            lines.extend(f"    {line}" for line in logs[finding.name].splitlines())
    for (pod_namespace, state, reason), names in pods.items():
        subject = f"Pod {pod_namespace}/{names[0]}" if len(names) == 1 else f"Pods {', '.join(f'{pod_namespace}/{n}' for n in names)}"
        lines.append(f"  {subject}: {state + ': ' if state else ''}{reason}")
    if not found:
        lines.append("  no object of the release reported a reason (no pending pod or claim, no failed Job, no warning event)")
    lines.extend(f"  {line}" for line in outcome)
    return "\n".join(lines)
