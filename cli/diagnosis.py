"""Read why a release did not become ready from Helm and the cluster (the pinned helm and kubectl).

Bounded: a handful of calls of at most `timeout_s` each. Values and secrets
are never read: Helm's history (descriptions), the manifest's object names,
the namespace's pods, claims, Jobs and events, and a failed Job's last log
lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cli.kubectl import kubectl
from cli.process import ToolError, run, tool
from model.diagnosis import findings, helm_outcome, report
from model.manifest import parse_manifest

LOG_LINES = 20
# The workloads whose pods carry their name as a prefix.
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "PersistentVolumeClaim", "Pod", "CronJob")


def helm_history_rows(namespace: str, name: str, timeout_s: float) -> list[dict[str, Any]]:
    """`helm history -o json` of a release ([] when Helm holds none: never installed, or uninstalled after a failed install)."""
    result = run([tool("helm"), "history", name, "--namespace", namespace, "--output", "json", "--max", "20"], timeout_s, check=False)
    if result.returncode != 0:
        if "not found" in result.stderr:
            return []
        raise ToolError(f"`helm history {name}` failed: {result.stderr.strip()[-300:]}")
    rows = json.loads(result.stdout or "[]")
    return rows if isinstance(rows, list) else []


def manifest_names(namespace: str, name: str, revision: int, timeout_s: float) -> set[str]:
    """Names of the workloads and claims a revision applied (their pods and events carry them)."""
    result = run([tool("helm"), "get", "manifest", name, "--namespace", namespace, "--revision", str(revision)], timeout_s, check=False)
    if result.returncode != 0:
        return set()
    return {key[3] for key, obj in parse_manifest(result.stdout).items() if obj.get("kind") in WORKLOADS}


def _items(args: list[str], timeout_s: float) -> list[dict[str, Any]]:
    out = kubectl([*args, "--output", "json"], timeout_s).stdout
    return list((json.loads(out or "{}") or {}).get("items") or [])


def job_logs(namespace: str, job: str, timeout_s: float) -> str:
    """The Job's last log lines, or why there are none (a simulated cluster runs no containers)."""
    result = kubectl(["logs", f"job/{job}", "--namespace", namespace, f"--tail={LOG_LINES}", "--all-containers"], timeout_s, check=False)
    if result.returncode == 0 and result.stdout.strip():
        return "last log lines:\n" + result.stdout.rstrip()
    why = (result.stderr.strip().splitlines() or ["no output"])[-1]
    return f"logs unavailable ({why}); the conditions and events above are what the cluster recorded"


def diagnose(release: str, namespace: str, neighbours: Iterable[str] = (), since: datetime | None = None, timeout_s: float = 20.0) -> str:
    """One release's explanation (model.diagnosis.report); never raises: a cluster that cannot be asked is said so."""
    try:
        history = helm_history_rows(namespace, release, timeout_s)
        failed = [int(r.get("revision") or 0) for r in history if r.get("status") == "failed"]
        owned = manifest_names(namespace, release, max(failed), timeout_s) if failed else set()
        objects = _items(["get", "pods,persistentvolumeclaims,jobs", "--namespace", namespace], timeout_s)
        events = _items(["get", "events", "--namespace", namespace], timeout_s)
        found = findings(objects, events, release, neighbours, owned, since)
        # A failed Job's pods may be gone (a failed install is uninstalled): its events stay, and the logs are asked for anyway.
        logs = {f.name: job_logs(namespace, f.name, timeout_s) for f in found if f.kind == "Job"}
    except (ToolError, ValueError) as error:
        return f"release {release} ({namespace}) did not become ready; the cluster could not be asked why: {error}"
    outcome = helm_outcome(history, since)
    if not history:
        outcome = ["Helm: the release is not installed: the failed install was uninstalled (install remediation, Helm's --atomic)"]
    return report(release, namespace, outcome, found, logs)
