"""What runs now, and bounded calls of the tools that tell: helm, kubectl, pulumi.

Shared by `diff`, `drift` and `recover`. Every call has a timeout; a tool
that is missing, fails or hangs raises ToolError with a message that names
the command (never its output of values or secrets). Helm manifests become
objects keyed by apiVersion, kind, namespace and name; Secret data and the
secret values a release was installed with are masked before anything is
compared or printed.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model.values import MASK, get_path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
# Shorter strings would mask unrelated text; secrets this short are refused by no one, so say so where it matters.
MIN_SECRET_LEN = 4
MASK_B64 = base64.b64encode(MASK.encode()).decode()

ObjectKey = tuple[str, str, str, str]
"""apiVersion, kind, namespace ('' when the manifest names none), name."""


class ToolError(RuntimeError):
    """A tool is missing, failed or did not answer in time; the message names the command and the fix."""


def tool(name: str) -> str:
    """The project's build of a tool (.tools/bin), else the one on PATH; ToolError with the `make setup` hint."""
    local = TOOLS / name
    if os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolError(f"{name} is not installed: run `make setup` ({TOOLS} holds the project's tools; kubectl may also come from PATH)")


def run(command: list[str], timeout_s: float, *, stdin: str | None = None, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command with a deadline; on expiry interrupt it (SIGINT), then kill it.

    SIGINT first because pulumi then stops its plugins and releases the stack
    lock; a plain kill would leave both behind.
    """
    process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                               env=dict(env) if env is not None else None)
    try:
        out, err = process.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        raise ToolError(f"`{_short(command)}` did not finish within {timeout_s:.0f} s and was stopped") from None
    result = subprocess.CompletedProcess(command, process.returncode, out, err)
    if check and result.returncode != 0:
        raise ToolError(f"`{_short(command)}` failed (exit {result.returncode}): {err.strip()[-600:]}")
    return result


def _short(command: list[str]) -> str:
    words = [Path(command[0]).name, *command[1:]]
    text = " ".join(words)
    return text if len(text) < 160 else text[:157] + "..."


# --- Helm's record of the releases ---------------------------------------------

@dataclass(frozen=True)
class HelmRelease:
    """The latest revision Helm holds for a release."""

    namespace: str
    name: str
    revision: int
    status: str


def helm_releases(names: Iterable[str], timeout_s: float) -> dict[tuple[str, str], HelmRelease]:
    """(namespace, name) -> latest revision of every Helm release with one of these names, in any status."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    pattern = "^(" + "|".join(wanted) + ")$"
    out = run([tool("helm"), "list", "--all-namespaces", "--all", "--output", "json", "--max", "10000", "--filter", pattern], timeout_s).stdout
    rows = json.loads(out or "[]")
    return {(r["namespace"], r["name"]): HelmRelease(r["namespace"], r["name"], int(r["revision"]), r["status"]) for r in rows}


def helm_history(namespace: str, name: str, timeout_s: float) -> list[tuple[int, str]]:
    """(revision, status) of every revision Helm keeps for a release, oldest first."""
    out = run([tool("helm"), "history", name, "--namespace", namespace, "--output", "json", "--max", "10000"], timeout_s).stdout
    return sorted((int(r["revision"]), r["status"]) for r in json.loads(out or "[]"))


def deployed_revision(release: HelmRelease, timeout_s: float) -> int | None:
    """The revision that runs: the latest if deployed, else the newest one Helm marks deployed (None: never deployed)."""
    if release.status == "deployed":
        return release.revision
    deployed = [rev for rev, status in helm_history(release.namespace, release.name, timeout_s) if status == "deployed"]
    return max(deployed) if deployed else None


def release_manifest(namespace: str, name: str, revision: int, timeout_s: float) -> str:
    """The manifest and hooks Helm recorded for one revision (what it applied), as one YAML stream."""
    template = '{{.Release.Manifest}}{{range .Release.Hooks}}{{"\\n---\\n"}}{{.Manifest}}{{end}}'
    return run([tool("helm"), "get", "all", name, "--namespace", namespace, "--revision", str(revision), "--template", template], timeout_s).stdout


def release_secret_values(namespace: str, name: str, revision: int, secret_paths: Iterable[str], timeout_s: float) -> list[str]:
    """The secret values a revision was installed with (at the release's declared secret paths), for masking only."""
    paths = list(secret_paths)
    if not paths:
        return []
    out = run([tool("helm"), "get", "values", name, "--namespace", namespace, "--revision", str(revision), "--output", "json"], timeout_s).stdout
    values = json.loads(out or "{}") or {}
    found = [get_path(values, path) for path in paths]
    return [str(v) for v in found if v is not None and not isinstance(v, dict | list)]


# --- manifests as objects --------------------------------------------------------

def parse_manifest(text: str) -> dict[ObjectKey, dict[str, Any]]:
    """The objects of a YAML stream by key; `List` objects are opened; empty documents skipped."""
    objects: dict[ObjectKey, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(text):
        items = doc.get("items") if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") else [doc]
        for item in items or []:
            if not isinstance(item, dict) or "kind" not in item:
                continue
            objects[object_key(item)] = item
    return objects


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def key_text(key: ObjectKey, default_namespace: str = "") -> str:
    """`apps/v1 Deployment astrago/astrago-core` (a manifest without namespace gets the release's)."""
    api, kind, namespace, name = key
    namespace = namespace or default_namespace
    return f"{api} {kind} {namespace + '/' if namespace else ''}{name}"


def mask_object(obj: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A copy with every Secret data/stringData value masked and every known secret value replaced by the mask."""
    masked = copy.deepcopy(dict(obj))
    if masked.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(masked.get(field), dict):
                masked[field] = dict.fromkeys(masked[field], MASK)
    scrubbed: dict[str, Any] = scrub(masked, secrets)
    return scrubbed


def scrub(node: Any, secrets: Iterable[str]) -> Any:
    """node with each secret (as is, base64 and JSON-escaped) replaced by the mask in every string."""
    forms: list[tuple[str, str]] = []
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) < MIN_SECRET_LEN:
            continue
        forms.append((secret, MASK))
        forms.append((base64.b64encode(secret.encode()).decode(), MASK_B64))
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret:
            forms.append((escaped, MASK))
    if not forms:
        return node
    return _scrub(node, forms)


def _scrub(node: Any, forms: list[tuple[str, str]]) -> Any:
    if isinstance(node, str):
        for secret, mask in forms:
            node = node.replace(secret, mask)
        return node
    if isinstance(node, dict):
        return {_scrub(k, forms): _scrub(v, forms) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v, forms) for v in node]
    return node


def kubeconfig_problem() -> str | None:
    """Why no cluster can be reached without even asking (no KUBECONFIG and no ~/.kube/config), else None."""
    configured = os.environ.get("KUBECONFIG")
    if configured:
        missing = [p for p in configured.split(os.pathsep) if p and not Path(p).is_file()]
        return f"KUBECONFIG names {missing}, which do not exist; `make cluster` writes .state/kubeconfig for the local stack" if missing else None
    if (Path.home() / ".kube" / "config").is_file():
        return None
    return "no kubeconfig: set KUBECONFIG (the make targets set it to .state/kubeconfig for the local stack)"


def resolve_for_cluster(stack: str, root: Path, charts_dir: str | None) -> Any:
    """A stack resolved for commands that talk to its cluster, or the exit code 2 after saying why.

    Shared by diff and drift: the stack must resolve and a kubeconfig must be usable.
    """
    import sys

    from commands.values import resolve_stack
    from model.errors import InputError

    try:
        deployment = resolve_stack(stack, root, charts_dir)
    except InputError as error:
        print(f"error: stack {stack}:\n{error}", file=sys.stderr)
        return 2
    problem = kubeconfig_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return deployment
