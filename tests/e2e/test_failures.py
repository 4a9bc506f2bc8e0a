"""A release that does not become ready is explained by its causes, with the rollback, and no Python traceback.

The local stack on a throwaway stack; astrago is made to fail on the
simulated cluster the ways real releases fail: its pods select a node label
no node has (the scheduler's FailedScheduling event names it), MariaDB's
claim asks for a storage class the cluster lacks (its claim stays Pending
with the volume controller's event), and a migration Job added to the
chart copy cannot run before its deadline (the Job controller fails it;
kwok runs no containers, so there are no logs to show and the report says
so). `pulumi up` runs as `make up` runs it (`--continue-on-error`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from pulumi import automation as auto

from model.values import deep_merge
from tests.e2e.full_catalog import command
from tests.support.engine import ROOT, TOOLS, E2EStack, dispose, new_stack

UNSCHEDULABLE = {"nodeSelector": {"astrago.test/none": "true"}}
# A hook-less Job the release waits for (waitForJobs): it cannot schedule, and its deadline fails it.
MIGRATE_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-db-migrate
spec:
  activeDeadlineSeconds: 5
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {astrago.test/none: "true"}
      containers:
        - name: migrate
          image: registry.example/astrago/migrate:1.0.0
"""


def _releases(extra: dict[str, object]) -> dict[str, object]:
    config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"]
    return deep_merge(config["astrago-deploy:releases"], extra)


def _up(stack: E2EStack) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOLS / "pulumi"), "up", "--yes", "--skip-preview", "--continue-on-error", "--stack", stack.name, "--non-interactive"],
                          cwd=stack.project, env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=600)


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and "unhandled exception" not in text and "ResourceRegistrationFailed" not in text, text[-3000:]


def test_a_failed_install_names_each_cause_and_the_uninstall(project: Path, engine_env: dict[str, str]) -> None:
    (project / "charts" / "own" / "astrago" / "templates" / "zz-e2e-migrate.yaml").write_text(MIGRATE_JOB)
    astrago = {"values": {**UNSCHEDULABLE, "mariadb": {"persistence": {"enabled": True}}, "storage": {"storageClass": "e2e-missing"}},
               "helm": {"timeout": "30s"}}
    stack = new_stack(project, engine_env, "local", {"releases": _releases({"astrago": astrago})}, prefix="e2e-fail")
    try:
        result = _up(stack)
        output = result.stdout + result.stderr
        print(output[-4000:])
        assert result.returncode != 0
        _no_traceback(output)
        assert "release astrago (astrago) did not become ready:" in output
        assert "FailedScheduling" in output and "didn't match Pod's node affinity/selector" in output
        assert "PersistentVolumeClaim astrago/" in output and "e2e-missing" in output
        assert "Job astrago/astrago-db-migrate" in output and "DeadlineExceeded" in output and "logs unavailable" in output
        assert "the failed install was uninstalled" in output
        advice = command("diagnose", stack)
        assert "make recover" not in advice.err, "a failed release is not an interrupted update"
    finally:
        dispose(stack)


def test_a_failed_upgrade_names_the_cause_and_the_rollback(project: Path, engine_env: dict[str, str]) -> None:
    stack = new_stack(project, engine_env, "local", {"releases": _releases({"astrago": {"helm": {"timeout": "30s"}}})}, prefix="e2e-fail")
    try:
        assert stack.stack.up(color="never", message="e2e: astrago ready").summary.result == "succeeded"
        path = project / f"Pulumi.{stack.name}.yaml"
        settings = yaml.safe_load(path.read_text())
        # The scheduler's event comes at once: the failing upgrade need not wait long for it.
        settings["config"]["astrago-deploy:releases"] = _releases({"astrago": {"values": UNSCHEDULABLE, "helm": {"timeout": "15s"}}})
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        result = _up(stack)
        output = result.stdout + result.stderr
        print(output[-4000:])
        assert result.returncode != 0
        _no_traceback(output)
        assert "FailedScheduling" in output and "didn't match Pod's node affinity/selector" in output
        assert "Helm: revision 2 failed: " in output and "then rolled back: revision 3 (Rollback to 1) is deployed" in output
        explained = command("diagnose", stack, "--release", "astrago")
        print(explained.err)
        assert explained.code == 1 and "Rollback to 1" in explained.err
    finally:
        dispose(stack)


def test_an_unreachable_cluster_is_refused_before_the_engine_asks_it_and_the_state_is_untouched(project: Path, engine_env: dict[str, str],
                                                                                              tmp_path: Path) -> None:
    stack = new_stack(project, engine_env, "local", {}, prefix="e2e-down")
    workspace = stack.stack.workspace
    try:
        assert stack.stack.up(color="never", message="e2e: deployed").summary.result == "succeeded"
        # Decrypted: every write of the state encrypts its secrets again, with new nonces.
        before = stack.pulumi("stack", "export", "--show-secrets")
        # The same kubeconfig, pointing at a port where no API server listens.
        config = yaml.safe_load(Path(engine_env["KUBECONFIG"]).read_text())
        config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
        down = tmp_path / "kubeconfig-down"
        down.write_text(yaml.safe_dump(config))
        # A new mapping: the workspace shares the session's engine environment.
        workspace.env_vars = {**engine_env, "KUBECONFIG": str(down)}
        for action in (lambda: stack.stack.preview(color="never"), lambda: stack.stack.up(color="never")):
            try:
                action()
            except auto.CommandError as error:
                message = str(error)
            else:
                raise AssertionError("an unreachable cluster must stop preview and up")
            print(message[-1500:])
            _no_traceback(message)
            assert "the cluster at https://127.0.0.1:1 is unreachable" in message and "state is untouched" in message, message[-2000:]
        workspace.env_vars = engine_env
        # A refused `up` still records a failed update: the engine writes the state again (manifest time,
        # secrets encrypted anew); what it holds is unchanged. Only keys are printed, never values.
        after = json.loads(stack.pulumi("stack", "export", "--show-secrets"))["deployment"]
        was = json.loads(before)["deployment"]
        changed = [(a["urn"], sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))) for a, b in zip(after["resources"], was["resources"], strict=False) if a != b]
        assert len(after["resources"]) == len(was["resources"]) and not changed, f"no resource in the state changed: {changed}"
        assert not after.get("pending_operations"), "no operation left pending"
    finally:
        workspace.env_vars = engine_env
        dispose(stack)
