"""Histories made up in code, for tests of the views at a scale no test deploys (200 updates)."""

from __future__ import annotations

import hashlib
from typing import Any

from model.history import History, StoredUpdate, build_updates
from model.identity import RELEASE_TYPE, SECRET_SIG, SECRET_SIG_KEY, STACK_TYPE, Description, release_urn, urn

START = 1_780_000_000
RELEASES = ("astrago", "keycloak-addons", "gpu-process-exporter")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def deployment(versions: dict[str, str], tag: str = "core-dev-0000001", ciphertext: str = "v1:ct-values") -> dict[str, Any]:
    """A deployment as Pulumi stores it: one Helm Release resource per release, astrago with an image tag and a secret value."""
    resources: list[dict[str, Any]] = [{"urn": urn("s", (), STACK_TYPE, "astrago-deploy-s"), "type": STACK_TYPE}]
    for name, version in versions.items():
        values: dict[str, Any] = {"replicas": 1}
        if name == "astrago":
            values = {"core": {"image": {"tag": tag}}, "experiment": {"enabled": False},
                      "mariadb": {"password": {SECRET_SIG_KEY: SECRET_SIG, "ciphertext": ciphertext}}}
        resources.append({
            "urn": release_urn("s", "applications", name),
            "type": RELEASE_TYPE,
            "inputs": {"name": name, "namespace": "astrago", "chart": f"charts/own/{name}", "description": Description(version, digest(name + version)).format(),
                       "values": values, "atomic": True},
            "outputs": {"name": name, "status": {"status": "deployed", "revision": 1}},
        })
    return {"manifest": {}, "resources": resources}


def cli_row(kind: str, result: str, start: int, message: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of `pulumi stack history --json` as the CLI prints it (secrets blinded)."""
    def t(s: int) -> str:
        from datetime import UTC, datetime
        return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": 0, "kind": kind, "startTime": t(start), "endTime": t(start + 30), "message": message, "result": result,
            "environment": {"git.head": f"{start:040x}"[-40:], "git.author": "Audit Tester", "exec.kind": "cli"},
            "config": config or {}, "resourceChanges": {"same": 10, "update": 1}}


def synthetic_history(count: int = 200, stack: str = "synthetic") -> History:
    """count updates: every 7th failed, every 10th a refresh, astrago's chart version rising every 20 updates."""
    rows, stored = [], []
    for i in range(count):
        kind = "refresh" if i % 10 == 9 else "update"
        result = "failed" if i % 7 == 6 else "succeeded"
        start = START + i * 3600
        versions = {"astrago": f"1.{i // 20}.0", "keycloak-addons": "1.0.0", "gpu-process-exporter": "0.3.1"}
        secret = {"astrago-deploy:mariadbPassword": {"secret": True}}
        rows.append(cli_row(kind, result, start, f"by ci-bot: change {i + 1}", secret))
        entry = {"kind": kind, "startTime": start, "config": {"astrago-deploy:mariadbPassword": {"secure": "v1:ct-config"}}}
        stored.append(StoredUpdate(key=f".pulumi/history/astrago-deploy/{stack}/{stack}-{start}000000000.history.json", entry=entry,
                                   deployment=deployment(versions, tag=f"core-dev-{i:07d}")))
    history = History(stack=stack, project="astrago-deploy", backend="postgres://****:****@127.0.0.1:5432/state", updates=[])
    history.updates = build_updates(list(reversed(rows)), stored, history.ciphertexts)
    return history
