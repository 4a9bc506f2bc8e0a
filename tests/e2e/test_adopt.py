"""Migration from Helmfile: a stack adopts the Helm releases already in the cluster.

The releases are installed first with the helm CLI, as Helmfile does
(`helm upgrade --install --create-namespace --wait`, no description), with
the values the local stack resolves plus the test's secrets; one value
differs, as on a site whose Helmfile values drifted from the stack. The
adopting `up` must import every release without reinstalling it: one Helm
revision at most each, pods kept (same UIDs) where the values did not
change, no credential ever written to the state in plain text, and a clean
preview afterwards, with `adopt` still set and after it is removed.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from model.deployment import resolve_stack
from model.settings import SKIP_CHECKPOINTS
from model.values import set_path
from tests.support.engine import ROOT, SECRETS, E2EStack, dispose, new_stack

# What the site's Helmfile values say differently from the stack: an older
# frontend image. Only the frontend pod may be recreated by the adoption.
DRIFTED = ("astrago", "frontend.image.tag", "frontend-dev-helmfile")
CHANGED_POD_PREFIX = "astrago-frontend-"


def _helmfile_install(stack: E2EStack, project: Path, scratch: Path) -> dict[str, str]:
    """Install the local stack's releases with the helm CLI; return release -> namespace."""
    deployment = resolve_stack("local", root=ROOT)
    installed = {}
    scratch.mkdir(parents=True)
    for name, release in deployment.releases.items():
        values: dict[str, Any] = json.loads(json.dumps(release.values))
        for path, key in release.secret_paths.items():
            set_path(values, path, SECRETS[key])
        if name == DRIFTED[0]:
            set_path(values, DRIFTED[1], DRIFTED[2])
        # Outside the repository, removed with the test's temporary folder.
        values_file = scratch / f"{name}.yaml"
        values_file.write_text(yaml.safe_dump(values))
        stack.helm("upgrade", "--install", name, str(project / release.chart_path), "--namespace", release.namespace,
                   "--create-namespace", "--wait", "--timeout", "300s", "--values", str(values_file))
        installed[name] = release.namespace
    return installed


def _helm_releases(stack: E2EStack) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in json.loads(stack.helm("list", "-A", "-o", "json"))}


def _pods(stack: E2EStack, namespaces: set[str]) -> dict[str, str]:
    """namespace/pod name -> UID of every long-running pod in the namespaces.

    Pods of Jobs are left out: the exporter's CronJob starts one every minute, so they come and go on their own.
    """
    pods = {}
    for namespace in sorted(namespaces):
        items = json.loads(stack.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        pods.update({f"{namespace}/{p['metadata']['name']}": p["metadata"]["uid"] for p in items
                     if not any(o.get("kind") == "Job" for o in p["metadata"].get("ownerReferences") or [])})
    return pods


def _settled_pods(stack: E2EStack, namespaces: set[str], count: int, timeout_s: float = 300) -> dict[str, str]:
    """The pods once `count` of them exist and none is terminating (a rollout has finished)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pods = _pods(stack, namespaces)
        terminating = stack.kubectl("get", "pods", "-A", "-o", "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name} {end}").stdout.strip()
        if len(pods) == count and not terminating:
            return pods
        assert time.monotonic() < deadline, f"pods did not settle in {timeout_s}s: {sorted(pods)}; terminating: {terminating}"
        time.sleep(2)


class StateWatcher:
    """Reads every file of the state backend every 50 ms while an update runs, noting any plain-text secret."""

    def __init__(self, stack: E2EStack) -> None:
        self.backend = Path(stack.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
        self.found: set[tuple[str, str]] = set()
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for path in self.backend.rglob("*"):
                try:
                    text = path.read_text(errors="replace") if path.is_file() else ""
                except OSError:
                    continue  # replaced while being read; the next pass reads it
                self.found.update((path.name, key) for key, value in SECRETS.items() if value in text)
            self.reads += 1
            self._stop.wait(0.05)

    def __enter__(self) -> StateWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_adopt_imports_helmfile_releases_without_reinstalling(project: Path, engine_env: dict[str, str], tmp_path: Path) -> None:
    stack = new_stack(project, engine_env, "local", {"adopt": ["all"]}, prefix="e2e-adopt")
    try:
        # Adopting what is not installed fails at preview, naming the release id
        # (<namespace>/<name>; the first release in deploy order stops the rest).
        with pytest.raises(auto.CommandError) as missing:
            stack.stack.preview(color="never")
        assert "resource 'gpu-operator/gpu-operator-addons' does not exist" in str(missing.value), str(missing.value)[-1500:]

        started = time.monotonic()
        installed = _helmfile_install(stack, project, tmp_path / "helmfile-values")
        print(f"helm CLI installed {sorted(installed)} in {time.monotonic() - started:.1f}s")
        namespaces = set(installed.values())
        before = _helm_releases(stack)
        pods_before = _pods(stack, namespaces)
        assert len(pods_before) >= 5, f"the helm CLI install should run the product's pods: {pods_before}"

        # The diff of the adoption shows the drift, never a credential Helm stored.
        preview = stack.stack.preview(diff=True, color="never")
        assert preview.change_summary.get(auto.OpType.IMPORT) == len(installed), preview.change_summary
        assert DRIFTED[2] in preview.stdout, "the adopting preview should show where Helmfile's values differ"
        leaked = [key for key, value in SECRETS.items() if value in preview.stdout]
        assert not leaked, f"the adopting preview prints {leaked} in plain text"

        # Without checkpoints off the update is refused before anything changes.
        with pytest.raises(auto.CommandError) as refused:
            stack.stack.up(color="never")
        assert f"{SKIP_CHECKPOINTS}=true make up STACK={stack.name}" in str(refused.value), str(refused.value)[-1500:]
        assert _helm_releases(stack) == before, "a refused adoption must not touch the releases"

        started = time.monotonic()
        workspace, usual = stack.stack.workspace, dict(stack.stack.workspace.env_vars)
        workspace.env_vars = {**usual, SKIP_CHECKPOINTS: "true"}
        try:
            with StateWatcher(stack) as watcher:
                result = stack.stack.up(on_output=print, color="never", message="e2e: adopt Helmfile releases")
        finally:
            workspace.env_vars = usual
        print(f"adopting up took {time.monotonic() - started:.1f}s; state files read {watcher.reads} times meanwhile")
        assert watcher.reads >= 5, "the watcher should have read the state during the update"
        assert not watcher.found, f"plain-text secrets were written to the state during the adoption: {sorted(watcher.found)}"
        changes = result.summary.resource_changes or {}
        assert result.summary.result == "succeeded", result.stderr
        assert changes.get(auto.OpType.IMPORT, 0) == len(installed), f"every release should be imported: {changes}"
        assert changes.get(auto.OpType.REPLACE, 0) == 0 and changes.get(auto.OpType.DELETE, 0) == 0, changes
        leaked = [key for key, value in SECRETS.items() if value in result.stdout]
        assert not leaked, f"the adopting update prints {leaked} in plain text"

        after = _helm_releases(stack)
        for name, namespace in installed.items():
            assert after[name]["namespace"] == namespace and after[name]["status"] == "deployed", after[name]
            grew = int(after[name]["revision"]) - int(before[name]["revision"])
            assert 0 <= grew <= 1, f"{name}: Helm revision went {before[name]['revision']} -> {after[name]['revision']} (a reinstall, or more than one upgrade)"
        history = json.loads(stack.helm("history", "astrago", "-n", installed["astrago"], "-o", "json"))
        assert history[0]["revision"] == 1, f"astrago was reinstalled: {history}"
        assert history[-1]["description"].startswith("chart "), f"the stack's upgrade should carry its description: {history[-1]}"

        pods_after = _settled_pods(stack, namespaces, len(pods_before))
        kept = {pod: uid for pod, uid in pods_before.items() if not pod.split("/", 1)[1].startswith(CHANGED_POD_PREFIX)}
        recreated = sorted(pod for pod, uid in kept.items() if pods_after.get(pod) != uid)
        assert not recreated, f"pods whose values did not change were recreated: {recreated}"
        frontend = [pod for pod in pods_after if pod.split("/", 1)[1].startswith(CHANGED_POD_PREFIX)]
        assert frontend and all(pod not in pods_before for pod in frontend), "the drifted frontend should run the stack's image now"
        image = stack.kubectl("get", "deploy", "astrago-frontend", "-n", installed["astrago"],
                              "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
        assert DRIFTED[2] not in image, f"the stack's values should win over Helmfile's: {image}"

        # Namespaces made by Helmfile are taken over by server-side apply (the provider upserts).
        for namespace in namespaces:
            labels = json.loads(stack.kubectl("get", "namespace", namespace, "-o", "jsonpath={.metadata.labels}").stdout)
            assert labels.get("app.kubernetes.io/managed-by") == "astrago-deploy", f"namespace {namespace} not adopted: {labels}"

        # A stale `adopt` is harmless: imported releases keep their import id.
        stale = stack.stack.preview(expect_no_changes=True, color="never")
        assert set(stale.change_summary) <= {auto.OpType.SAME}, stale.change_summary
        # The procedure: remove adopt after the adopting up; the stack then simply manages the releases.
        stack.stack.remove_config("adopt")
        clean = stack.stack.preview(expect_no_changes=True, color="never")
        assert set(clean.change_summary) <= {auto.OpType.SAME}, clean.change_summary

        stored = stack.stored_state()
        exported = stack.pulumi("stack", "export")
        for key, value in SECRETS.items():
            assert value not in stored, f"{key} appears in plain text in the state backend's files after adoption"
            assert value not in exported, f"{key} appears in plain text in `pulumi stack export` after adoption"
    finally:
        dispose(stack)
