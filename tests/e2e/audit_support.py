"""Helpers of the audit and rollback tests: a git-tracked project copy and the audit command run offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.engine import ROOT, E2EStack

GIT_IDENTITY = ("-c", "user.name=Audit Tester", "-c", "user.email=audit-tester@example.invalid")
# Ciphertexts as the file backend and stack files store them.
CIPHERTEXT = re.compile(r'"(?:ciphertext|secure)":\s*"([^"]+)"|secure:\s*(v1:\S+)')


def git(project: Path, *args: str) -> str:
    """Run git in the project copy (a repository of its own) with a fixed identity."""
    out = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=project, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"git {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def init_repo(project: Path) -> None:
    """Make the project copy a git repository, so Pulumi records commits as it does for the real one."""
    # As in a checkout: the program writes its caches (render, staged charts) under .state.
    (project / ".gitignore").write_text(".venv\n.tools\n.state/\n__pycache__/\n")
    git(project, "init", "-q", "-b", "main")


def commit(project: Path, message: str) -> str:
    """Commit everything and return the commit id."""
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)
    return git(project, "rev-parse", "HEAD").strip()


def offline_env(engine_env: dict[str, str]) -> dict[str, str]:
    """Only the backend location: no passphrase, no kubeconfig, no Pulumi home."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PULUMI_BACKEND_URL": engine_env["PULUMI_BACKEND_URL"]}


def audit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m commands.audit ...` as `make audit` runs it, with the given environment only."""
    return subprocess.run([sys.executable, "-m", "commands.audit", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def set_values(stack: E2EStack, release: str, values: dict[str, Any] | None = None, enabled: bool | None = None) -> None:
    """Edit the stack file as a person does: releases.<release>.values/enabled."""
    path = stack.project / f"Pulumi.{stack.name}.yaml"
    data = yaml.safe_load(path.read_text())
    releases = data["config"].setdefault("astrago-deploy:releases", {})
    entry = releases.setdefault(release, {})
    if values is not None:
        entry.setdefault("values", {})
        for key, value in values.items():
            node = entry["values"]
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = value
    if enabled is not None:
        entry["enabled"] = enabled
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def ciphertexts(stack: E2EStack) -> set[str]:
    """Every ciphertext in the backend's files and the stack file."""
    text = stack.stored_state() + (stack.project / f"Pulumi.{stack.name}.yaml").read_text()
    found = {a or b for a, b in CIPHERTEXT.findall(text)}
    assert found, "expected ciphertexts in the state (secrets are stored encrypted)"
    return found


def configmap_value(stack: E2EStack, key: str) -> str:
    """A key of the astrago ConfigMap, as the cluster holds it."""
    return stack.kubectl("get", "configmap", "astrago-config", "-n", "astrago", "-o", f"jsonpath={{.data.{key}}}").stdout
