"""The bench's harness: its tools and cluster, a bounded timed `run`, the engine's event stream, and `Bench`, which keeps every figure of one run."""


from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import yaml
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from pulumi import automation as auto
from pulumi.runtime.proto import events_pb2_grpc

from bench.helmfile_gen import secret_env
from tests.support.engine import SECRETS, E2EStack, Recorder, copy_project, engine_environment

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
HELM = TOOLS / "helm"
HELMFILE = TOOLS / "helmfile"
HELM_DIFF = TOOLS / "helm-diff"
HELM_PLUGINS = ROOT / ".tools" / "helm-plugins"
HELM_DIFF_VERSION = "3.9.11"
RESULTS = ROOT / "bench" / "results"
# The bench's own cluster: never the one `make up` or the e2e tests use.
CLUSTER_NAME, CLUSTER_PORT_BASE = "astrago-bench", "17343"
CLUSTER_KUBECONFIG = ROOT / ".state" / "kubeconfig-bench"
CLUSTER_ARGS = ("--name", CLUSTER_NAME, "--workdir", str(ROOT / ".state" / "kwok-bench"), "--kubeconfig", str(CLUSTER_KUBECONFIG), "--port-base", CLUSTER_PORT_BASE)
# One value changed, as tests/e2e/test_lifecycle.py changes it.
CHANGED_KEY, CHANGED_VALUE = "releases.loki-stack.values.loki.persistence.size", "15Gi"
OP_TIMEOUT_S = 1800
# Read by bench/program_timer.py: the program runs without its Helm render (the baseline of the render's cost).
NO_RENDER_ENV = "ASTRAGO_BENCH_NO_RENDER"
MIN_RUNS = 3
# The targets of the issue: (numerator, denominator, limit).
TARGETS = {
    "no-change preview / helmfile diff": ("full.preview_nochange", "full.helmfile_diff_nochange", 0.5),
    "up from empty / helmfile apply": ("full.up", "full.helmfile_apply", 1.0),
    "preview 100 / preview 12 (synthetic)": ("scale.100.preview_nochange", "scale.12.preview_nochange", 4.0),
    # Preview renders every release with Helm (render/releases.py); Helmfile's diff renders every chart too.
    "realistic no-change preview / helmfile diff": ("realistic.preview_nochange", "realistic.helmfile_diff_nochange", 0.5),
    "realistic preview, warm render cache / no render": ("realistic.preview_nochange", "realistic.preview_norender", 1.2),
    # The program's own run time: its body, from its first line to its last (imports, checks, resource
    # constructors); not the interpreter and SDK start-up every Pulumi Python program pays before it, nor
    # the engine's work it then waits for. See bench/README.md, "The program's own time".
    "program's own run time / no-change preview": ("full.program_body", "full.preview_nochange", 0.10),
}
# Comparisons printed without a target.
RATIOS = {
    "changed-value preview / helmfile diff": ("full.preview_changed", "full.helmfile_diff_changed"),
    "up wall / sum of release durations": ("full.up", "full.up_release_sum"),
    "up wall / up --parallel 1": ("full.up", "full.up_parallel1"),
    "program process CPU (all of it) / no-change preview": ("full.program_cpu", "full.preview_nochange"),
    "program wall (start to exit) / no-change preview": ("full.program_wall", "full.preview_nochange"),
    "program CPU above the SDK floor / no-change preview": ("full.program_cpu_above_floor", "full.preview_nochange"),
    "SDK floor: empty program's CPU / no-change preview": ("floor.program_cpu", "full.preview_nochange"),
    "empty program's preview / no-change preview": ("floor.preview_nochange", "full.preview_nochange"),
    "up 100 / up 12 (synthetic)": ("scale.100.up", "scale.12.up"),
    "preview 50 / preview 12 (synthetic)": ("scale.50.preview_nochange", "scale.12.preview_nochange"),
    "up 50 / up 12 (synthetic)": ("scale.50.up", "scale.12.up"),
    "realistic preview, empty render cache / no render": ("realistic.preview_coldcache", "realistic.preview_norender"),
    "realistic preview, empty render cache / warm": ("realistic.preview_coldcache", "realistic.preview_nochange"),
    # A runner without the cache (a fresh CI machine) pays this one.
    "realistic preview, empty render cache / helmfile diff": ("realistic.preview_coldcache", "realistic.helmfile_diff_nochange"),
}


class BenchError(RuntimeError):
    """A precondition or an operation failed: the bench stops and says what."""


@dataclass
class Figures:
    """Samples in seconds by figure name."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def median(self, name: str) -> float | None:
        values = self.samples.get(name)
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "samples": v} for name, v in self.samples.items()}


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = OP_TIMEOUT_S, ok: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command; return its wall time. A return code outside `ok` is a BenchError with the output's tail."""
    started = time.monotonic()
    try:
        result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(cmd[:4])} ...` did not finish within {timeout:.0f}s") from None
    wall = time.monotonic() - started
    if result.returncode not in ok:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BenchError(f"`{' '.join(cmd)}` exited {result.returncode} (expected {ok}):\n{tail}")
    return wall, result


class _Events(events_pb2_grpc.EventsServicer):  # type: ignore[misc]
    """Receives the engine's event stream (`--event-log tcp://...`), as the Automation API does."""

    def __init__(self, recorder: Recorder, bad: list[str]) -> None:
        self.recorder, self.bad = recorder, bad

    def StreamEvents(self, request_iterator: Iterator[Any], context: Any) -> Any:
        for request in request_iterator:
            try:
                self.recorder(auto.EngineEvent.from_json(json.loads(request.event)))
            except (ValueError, KeyError, TypeError) as error:
                self.bad.append(f"{error}: {request.event[:300]}")
        return empty_pb2.Empty()


@contextmanager
def event_stream(recorder: Recorder) -> Iterator[str]:
    """An events server on 127.0.0.1 feeding a Recorder; yields the `--event-log` value.

    A file event log is truncated when `up` moves from its preview to its
    update, so the stream is used instead: each event is stamped when it arrives.
    """
    bad: list[str] = []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    events_pb2_grpc.add_EventsServicer_to_server(_Events(recorder, bad), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        server.stop(grace=5).wait(timeout=10)
    if bad:
        raise BenchError(f"{len(bad)} engine event(s) could not be read, e.g. {bad[0]}")


@dataclass
class Bench:
    """One bench run: its scratch folder, engine environment and figures."""

    scratch: Path
    env: dict[str, str]
    runs: int
    figures: Figures = field(default_factory=Figures)
    program: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    log: Callable[[str], None] = field(default=lambda line: print(f"bench: {line}", flush=True))

    # --- Pulumi -------------------------------------------------------------

    def program_log(self, stack: E2EStack) -> Path:
        return self.scratch / f"program-{stack.name}.jsonl"

    def pulumi(self, stack: E2EStack, *args: str, ok: tuple[int, ...] = (0,), no_render: bool = False) -> tuple[float, subprocess.CompletedProcess[str]]:
        """The CLI on a stack, as `make` runs it (a person's command, not the Automation API)."""
        # PULUMI_DEBUG_COMMANDS enables --event-log, as the Automation API sets it; it changes nothing else.
        env = {**os.environ, **stack.env, "PULUMI_DEBUG_COMMANDS": "true", "ASTRAGO_BENCH_PROGRAM_LOG": str(self.program_log(stack))}
        if no_render:
            env[NO_RENDER_ENV] = "1"
        return run([str(TOOLS / "pulumi"), *args, "--stack", stack.name, "--non-interactive", "--color", "never"], env=env, cwd=stack.project, ok=ok)

    def up(self, stack: E2EStack, *extra: str) -> tuple[float, Recorder]:
        """`pulumi up --yes` (preview, then update, as `make up`); the wall time and its engine events."""
        recorder = Recorder()
        with event_stream(recorder) as events:
            wall, _ = self.pulumi(stack, "up", "--yes", "--message", "bench", "--event-log", events, *extra)
        return wall, recorder

    def preview(self, stack: E2EStack, *extra: str, expect: str, render: bool = True) -> tuple[float, dict[str, float]]:
        """A preview; checks its changes against `expect` ('none' or 'one update'); returns wall and the program's record.

        render=False runs the program with its Helm render switched off (bench/program_timer.py): the
        baseline the render's cost is measured against, never what a person runs.
        """
        log = self.program_log(stack)
        before = log.read_text().count("\n") if log.exists() else 0
        recorder = Recorder()
        with event_stream(recorder) as events:
            wall, _ = self.pulumi(stack, "preview", "--event-log", events, *extra, no_render=not render)
        # Provider resources are left out, as the engine's change summary does
        # (a default provider's step is bookkeeping, not a change of the platform).
        steps = [e.resource_pre_event.metadata for _, e in recorder.events
                 if e.resource_pre_event and not e.resource_pre_event.metadata.type.startswith("pulumi:providers:")]
        changes = [step.op for step in steps if step.op not in ("same", "read")]
        if expect == "none" and changes:
            raise BenchError(f"a no-change preview of {stack.name} shows changes: {changes}")
        if expect == "one update" and changes != ["update"]:
            urns = [step.urn for step in steps if step.op not in ("same", "read")]
            raise BenchError(f"the changed-value preview of {stack.name} shows {changes} ({urns}), not one update")
        records = log.read_text().splitlines()[before:] if log.exists() else []
        if len(records) != 1:
            raise BenchError(f"expected one program record per preview in {log}, found {len(records)}")
        return wall, json.loads(records[0])

    def destroy(self, stack: E2EStack) -> None:
        self.pulumi(stack, "destroy", "--yes", "--skip-preview")

    # --- Helmfile -----------------------------------------------------------

    def helmfile_env(self) -> dict[str, str]:
        helm_home = self.scratch / "helm-home"
        return {
            **os.environ,
            "PATH": f"{TOOLS}:{os.environ['PATH']}",
            "KUBECONFIG": self.env["KUBECONFIG"],
            "HELM_PLUGINS": str(HELM_PLUGINS),
            # Helm's own config, cache and data stay in the scratch folder.
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_DATA_HOME": str(helm_home / "data"),
            # Otherwise Helmfile asks the internet for a newer release.
            "HELMFILE_UPGRADE_NOTICE_DISABLED": "1",
            **{secret_env(key): value for key, value in SECRETS.items()},
        }

    def helmfile(self, helmfile: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess[str]]:
        return run([str(HELMFILE), "--file", str(helmfile), *args], env=self.helmfile_env(), cwd=helmfile.parent, ok=ok)

    def helmfile_destroy(self, helmfile: Path, namespaces: list[str]) -> None:
        """Uninstall every release, then remove the namespaces Helmfile created (it never deletes them)."""
        self.helmfile(helmfile, "destroy", "--skip-deps")
        run([str(TOOLS / "kubectl"), "delete", "namespace", "--ignore-not-found", "--wait=true", "--timeout=300s", *namespaces],
            env=self.helmfile_env(), timeout=360)


def install_helm_diff() -> None:
    """helm-diff as a Helm plugin in a git-ignored folder: our own plugin.yaml, the binary built from its module."""
    if not HELM_DIFF.exists() or not HELMFILE.exists():
        raise BenchError(f"{HELMFILE} or {HELM_DIFF} is missing: run `make bench-setup` (builds them from toolchain/go/helmfile and toolchain/go/helm-diff)")
    plugin = HELM_PLUGINS / "diff"
    (plugin / "bin").mkdir(parents=True, exist_ok=True)
    (plugin / "plugin.yaml").write_text(
        f'name: diff\nversion: "{HELM_DIFF_VERSION}"\nusage: "Preview helm upgrade changes as a diff"\n'
        'description: "helm-diff built from toolchain/go/helm-diff (bench only)"\ncommand: "$HELM_PLUGIN_DIR/bin/diff"\n'
    )
    target = plugin / "bin" / "diff"
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(HELM_DIFF)


def preflight() -> None:
    # kubectl removes the namespaces Helmfile leaves behind.
    for tool in ("pulumi", "helm", "kubectl", "kwok", "kwokctl", "etcd", "kube-apiserver"):
        if not (TOOLS / tool).exists():
            raise BenchError(f"{TOOLS / tool} is missing: run `make setup`")
    install_helm_diff()


def cluster(action: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "cluster" / "cluster.py"), action, *CLUSTER_ARGS], capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and action == "up":
        raise BenchError(f"starting the bench cluster failed:\n{result.stdout}\n{result.stderr}")


def engine_env(scratch: Path) -> dict[str, str]:
    """The e2e tests' engine environment, on the bench cluster and a file backend in the scratch folder."""
    backend = scratch / "backend"
    backend.mkdir(parents=True, exist_ok=True)
    return engine_environment(backend, CLUSTER_KUBECONFIG)


def bench_project(target: Path) -> Path:
    """A project copy whose entry point records the program's own time (bench/program_timer.py)."""
    project = copy_project(target)
    (project / "__main__.py").rename(project / "astrago_program.py")
    shutil.copy2(ROOT / "bench" / "program_timer.py", project / "__main__.py")
    # Destroy is not measured: a preDelete wait would only lengthen the bench.
    catalog_file = project / "catalog" / "releases.yaml"
    catalog = yaml.safe_load(catalog_file.read_text())
    for release in catalog["releases"]:
        for hook in release.get("hooks") or []:
            if hook.get("when") == "preDelete":
                hook["delay_s"] = 0
    catalog_file.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return project
