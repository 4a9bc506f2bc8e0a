"""The pinned Pulumi CLI: what recovery and diagnosis need (environment, backend, a stack's locks and state) and the read-only views of a backend the audit and the fleet read.

Read-only calls name the backend in the environment (PULUMI_BACKEND_URL), never on
the command line, where a database password would show in the process list;
errors show the URL with its credentials masked. None needs the passphrase:
`--show-secrets` is never given, so secrets stay ciphertexts or blinded.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cli.process import ROOT, ToolError, run, tool
from model.stackfile import PROJECT


@dataclass(frozen=True)
class Lock:
    """A lock file of the stack in a file backend."""

    path: Path
    pid: int
    host: str
    user: str
    since: str

    def taken(self) -> float | None:
        """When the lock was taken, seconds since the epoch (None when its timestamp cannot be read)."""
        match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", self.since)
        if not match:
            return None
        fraction = (match[2] or ".0")[:7]
        zone = "+00:00" if match[3] in (None, "Z") else match[3]
        return datetime.fromisoformat(f"{match[1]}{fraction}{zone}").timestamp()

    def holder_alive(self) -> bool | None:
        """True/False when the holder's host is this machine; None when it cannot be told."""
        if self.host != socket.gethostname():
            return None
        return _pulumi_process(self.pid)


def _pulumi_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return True
    return "pulumi" in Path(command).name


def pulumi_env(root: Path) -> dict[str, str]:
    """The CLI's environment: the project's plugins and no downloads unless the caller says otherwise (as `make` does)."""
    env = dict(os.environ)
    env.setdefault("PULUMI_HOME", str(root / ".tools" / "pulumi-home") if (root / ".tools" / "pulumi-home").is_dir() else str(ROOT / ".tools" / "pulumi-home"))
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "1")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    return env


def backend_url(root: Path, env: dict[str, str], timeout_s: float) -> str:
    """The state backend the CLI uses here (`pulumi whoami`)."""
    out = run([tool("pulumi"), "whoami", "--json", "--non-interactive"], timeout_s, cwd=root, env=env).stdout
    return str(json.loads(out).get("url", ""))


def stack_locks(backend: str, stack: str) -> list[Lock] | None:
    """The stack's lock files in a file backend (None for other backends: their locks cannot be read here)."""
    if not backend.startswith("file://"):
        return None
    folder = Path(backend.removeprefix("file://").split("?", 1)[0]) / ".pulumi" / "locks"
    candidates = list(folder.glob(f"*/{PROJECT}/{stack}/*.json")) + list(folder.glob(f"{stack}/*.json"))
    locks = []
    for path in candidates:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        locks.append(Lock(path=path, pid=int(data.get("pid") or 0), host=str(data.get("hostname", "?")),
                          user=str(data.get("username", "?")), since=str(data.get("timestamp", "?"))))
    return locks


def pending_operations(root: Path, env: dict[str, str], stack: str, timeout_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The exported state (secrets encrypted) and its pending operations: the CLI has no other way to list them."""
    out = run([tool("pulumi"), "stack", "export", "--stack", stack, "--non-interactive"], timeout_s, cwd=root, env=env).stdout
    state = json.loads(out)
    return state, list((state.get("deployment") or {}).get("pending_operations") or [])


def cancel(root: Path, env: dict[str, str], stack: str) -> None:
    """`pulumi cancel`: removes the stack's lock (the caller has made sure no update runs)."""
    run([tool("pulumi"), "cancel", "--yes", "--stack", stack, "--non-interactive"], 60, cwd=root, env=env)


def refresh(root: Path, env: dict[str, str], args: list[str], timeout_s: float) -> None:
    """`pulumi refresh` with the caller's arguments; ToolError with the CLI's own message (and the passphrase hint)."""
    result = run([tool("pulumi"), "refresh", *args], timeout_s, cwd=root, env=env, check=False)
    if result.returncode != 0:
        raise ToolError(f"`pulumi refresh` failed: {result.stderr.strip()[-600:] or result.stdout.strip()[-600:]}"
                        + ("; it needs the stack's passphrase (PULUMI_CONFIG_PASSPHRASE)" if "passphrase" in result.stderr else ""))


def refresh_preview_events(root: Path, stack: str, timeout_s: float) -> list[dict[str, Any]]:
    """The engine events of `pulumi refresh --preview-only` (the stream the Automation API's on_event gets)."""
    env = pulumi_env(root)
    # --event-log is registered only with debug commands on, as the Automation API runs the CLI.
    env["PULUMI_DEBUG_COMMANDS"] = "true"
    with tempfile.TemporaryDirectory(prefix="astrago-refresh-") as folder:
        log = Path(folder) / "events.jsonl"
        result = run([tool("pulumi"), "refresh", "--preview-only", "--stack", stack, "--event-log", str(log),
                      "--non-interactive", "--color", "never", "--suppress-outputs"], timeout_s, cwd=root, env=env, check=False)
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    if result.returncode != 0:
        messages = [e["diagnosticEvent"]["message"].strip() for e in events
                    if "diagnosticEvent" in e and e["diagnosticEvent"].get("severity") == "error"]
        detail = "\n".join(messages) or result.stderr.strip()[-800:] or result.stdout.strip()[-800:]
        raise ToolError(f"`pulumi refresh --preview-only --stack {stack}` failed (exit {result.returncode}):\n{detail}")
    return events


def config_with_secrets(root: Path, stack: str, timeout_s: float) -> dict[str, Any]:
    """`pulumi config --show-secrets --json`: key -> {"value", "secret"}; the values stay in memory only."""
    result = run([tool("pulumi"), "config", "--show-secrets", "--json", "--stack", stack], timeout_s, cwd=root, env=pulumi_env(root), check=False)
    if result.returncode != 0:
        # pulumi's message names the stack and the missing passphrase; it never holds a value.
        raise ToolError(f"the stack's secrets could not be read (set PULUMI_CONFIG_PASSPHRASE): {result.stderr.strip()[-400:]}")
    config = _json(result.stdout, "config --json")
    return config if isinstance(config, dict) else {}


# --- read-only views of a backend (audit, fleet) ------------------------------------
# Reading history and state is quick; a backend that does not answer is a network or lock problem.
TIMEOUT_S = 180.0
# `pulumi stack history` pages; a page larger than any stack's history reads it in one call.
HISTORY_PAGE = 100_000
_USERINFO = re.compile(r"(?P<scheme>[a-z0-9+.-]+://)(?P<userinfo>[^/@\s]+)@", re.IGNORECASE)


def redact_url(text: str) -> str:
    """A URL (or any text holding one) with user and password replaced, as Pulumi prints backends."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}****:****@", text)


def cli_environment(backend_url: str) -> dict[str, str]:
    """The CLI's environment: the project's plugin home, no update check, no downloads, this backend.

    The caller's environment is kept (credentials of an object store, PG* variables
    of a `postgres://` URL) except a passphrase, which none of these reads need.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")}
    env.update({
        "PULUMI_HOME": str(ROOT / ".tools" / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "1",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": backend_url,
    })
    return env


def _pulumi(backend_url: str, cwd: Path, *args: str) -> str:
    try:
        return run([tool("pulumi"), *args, "--non-interactive"], TIMEOUT_S, cwd=cwd, env=cli_environment(backend_url)).stdout
    except ToolError as error:
        raise ToolError(redact_url(str(error))) from None


def _json(text: str, command: str) -> Any:
    try:
        return json.loads(text or "null")
    except json.JSONDecodeError as error:
        raise ToolError(f"`pulumi {command}` printed no JSON ({error})") from None


@dataclass(frozen=True)
class StackSummary:
    """One line of `pulumi stack ls --json`."""

    name: str
    """As the CLI names it: `<stack>` or `organization/<project>/<stack>`."""
    last_update: str | None
    update_in_progress: bool
    resource_count: int | None

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def stack_ls(backend_url: str, project_dir: Path) -> list[StackSummary]:
    """The stacks of the project in `project_dir` (its Pulumi.yaml) that the backend holds."""
    rows = _json(_pulumi(backend_url, project_dir, "stack", "ls", "--json"), "stack ls --json") or []
    return [StackSummary(name=str(r["name"]), last_update=r.get("lastUpdate"), update_in_progress=bool(r.get("updateInProgress")),
                         resource_count=r.get("resourceCount")) for r in rows]


def stack_history(backend_url: str, project_dir: Path, stack: str, page_size: int = HISTORY_PAGE) -> list[dict[str, Any]]:
    """`pulumi stack history --json`, newest first: kind, result, times, message, environment, config (secrets blinded)."""
    out = _pulumi(backend_url, project_dir, "stack", "history", "--stack", stack, "--json", "--show-secrets=false",
                  "--page-size", str(page_size))
    rows = _json(out, "stack history --json")
    return list(rows or [])


def stack_export(backend_url: str, project_dir: Path, stack: str, version: int | None = None) -> dict[str, Any]:
    """The stack's state as `pulumi stack export` prints it (`{"version": 3, "deployment": {...}}`), secrets encrypted.

    version: an earlier update's state; only backends that number updates can (the
    DIY backends of v3.259.0 refuse: "does not provide the ability to export previous deployments").
    """
    args = ["stack", "export", "--stack", stack, *(["--version", str(version)] if version is not None else [])]
    data = _json(_pulumi(backend_url, project_dir, *args), "stack export")
    if not isinstance(data, dict):
        raise ToolError(f"`pulumi stack export --stack {stack}` printed no deployment")
    return data
