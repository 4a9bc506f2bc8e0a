"""`make bench`: Pulumi preview/up against Helmfile diff/apply on the same work, and how cost grows.

One run, on a local cluster of its own (started here, stopped at the end),
prints a table and writes bench/results/<timestamp>.json. What it measures
(bench/README.md says why each method):

- full catalog (12 releases, stage settings, stand-in charts synced from a
  chart repository on 127.0.0.1): `pulumi preview` with no change and with one
  changed value, `pulumi up` from empty; `helmfile diff` and `helmfile apply`
  on the same charts and resolved values (bench/helmfile_gen.py); the
  program's own time in each preview (bench/program_timer.py);
- parallelism: the wall time of `up` against the sum of the release durations
  (engine events) and against `pulumi up --parallel 1`;
- scale: synthetic catalogs (bench/synthetic.py) of 12, 50 and 100 releases:
  no-change preview and up from empty;
- realistic set (tests/realistic_charts, dev's settings, persistence on,
  harbor enabled): no-change previews with a warm render cache, with an
  empty one, and without rendering at all (the program's render switched
  off by bench/program_timer.py), against `helmfile diff` on the same work.

Every figure is the median of --runs runs (at least 3 unless --smoke) with
min and max; every ratio is computed from figures of this same run. Each
operation's result is checked (no-change previews change nothing, the
changed value is exactly one update, helmfile diff exit codes), so a figure
never times a failure. Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import yaml
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from pulumi import automation as auto
from pulumi.runtime.proto import events_pb2_grpc

from bench.helmfile_gen import secret_env, write_helmfile
from bench.synthetic import write_synthetic
from model.deployment import resolve_stack
from model.render import CACHE_DIR as RENDER_CACHE
from tests.support.engine import KWOK_VALUES, SECRETS, E2EStack, Recorder, copy_project, engine_environment, new_stack, sync_standins
from tests.support.standin_charts import build_realistic_charts_dir

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
    # Preview renders every release with Helm (model/render.py); Helmfile's diff renders every chart too.
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


def namespaces_of(stack: E2EStack) -> list[str]:
    return sorted({r.namespace for r in resolve_stack(stack.name, stack.project).releases.values()})


def release_durations(recorder: Recorder) -> dict[str, float]:
    return {name: end - start for name, (start, end) in recorder.windows().items()}


def bench_full(bench: Bench) -> None:
    """The full catalog: Pulumi and Helmfile alternate in every round, so load changes hit both alike."""
    work = bench.scratch / "full"
    project = bench_project(work / "project")
    sync_standins(project, work)
    stack = new_stack(project, bench.env, "stage", {"releases": KWOK_VALUES}, prefix="bench")
    stack_file = project / f"Pulumi.{stack.name}.yaml"
    deployment = resolve_stack(stack.name, project)
    helmfile = write_helmfile(deployment, project, work / "helmfile", HELM)
    original = stack_file.read_text()
    stack.stack.set_config(CHANGED_KEY, auto.ConfigValue(CHANGED_VALUE), path=True)
    changed_deployment = resolve_stack(stack.name, project)
    stack_file.write_text(original)
    helmfile_changed = write_helmfile(changed_deployment, project, work / "helmfile-changed", HELM)
    differing = [n for n in deployment.releases if deployment.releases[n].values != changed_deployment.releases[n].values]
    if differing != ["loki-stack"]:
        raise BenchError(f"the changed value should change loki-stack's values only, it changes {differing}")
    namespaces = namespaces_of(stack)
    bench.log(f"full catalog: {len(deployment.releases)} releases in {len(namespaces)} namespaces; helmfile {helmfile}")
    try:
        for round_ in range(1, bench.runs + 1):
            wall, recorder = bench.up(stack)
            durations = release_durations(recorder)
            if set(durations) != set(deployment.releases):
                raise BenchError(f"up recorded releases {sorted(durations)}, expected {sorted(deployment.releases)}")
            bench.figures.add("full.up", wall)
            bench.figures.add("full.up_release_sum", sum(durations.values()))
            bench.log(f"[{round_}] pulumi up {wall:.1f}s (sum of release durations {sum(durations.values()):.1f}s)")
            wall, record = bench.preview(stack, expect="none")
            bench.figures.add("full.preview_nochange", wall)
            bench.figures.add("full.program_cpu", record["cpu_s"])
            bench.figures.add("full.program_body", record["body_s"])
            bench.figures.add("full.program_wall", record["process_wall_s"])
            bench.program.setdefault("full", []).append(record)
            # helm-diff against the releases Pulumi installed: same charts, same values, so no change (exit 0).
            diff_wall, _ = bench.helmfile(helmfile, "diff", "--skip-deps", "--suppress-secrets", "--detailed-exitcode")
            bench.figures.add("full.helmfile_diff_nochange", diff_wall)
            stack.stack.set_config(CHANGED_KEY, auto.ConfigValue(CHANGED_VALUE), path=True)
            try:
                changed_wall, _ = bench.preview(stack, "--diff", expect="one update")
            finally:
                stack_file.write_text(original)
            bench.figures.add("full.preview_changed", changed_wall)
            changed_diff_wall, result = bench.helmfile(helmfile_changed, "diff", "--skip-deps", "--suppress-secrets", "--detailed-exitcode", ok=(2,))
            if "15Gi" not in result.stdout:
                raise BenchError("helmfile diff of the changed value does not show it")
            bench.figures.add("full.helmfile_diff_changed", changed_diff_wall)
            bench.log(f"[{round_}] preview {wall:.1f}s (program cpu {record['cpu_s']:.2f}s), helmfile diff {diff_wall:.1f}s; "
                      f"changed: preview {changed_wall:.1f}s, helmfile diff {changed_diff_wall:.1f}s")
            bench.destroy(stack)
            apply_wall, _ = bench.helmfile(helmfile, "apply", "--skip-deps", "--suppress-secrets")
            bench.figures.add("full.helmfile_apply", apply_wall)
            bench.helmfile_destroy(helmfile, namespaces)
            serial_wall, serial = bench.up(stack, "--parallel", "1")
            bench.figures.add("full.up_parallel1", serial_wall)
            bench.figures.add("full.up_parallel1_release_sum", sum(release_durations(serial).values()))
            bench.destroy(stack)
            bench.log(f"[{round_}] helmfile apply {apply_wall:.1f}s; pulumi up --parallel 1 {serial_wall:.1f}s")
    finally:
        _cleanup(bench, stack)


# The SDK floor: what every Pulumi Python program pays before it does anything.
FLOOR_PROGRAM = '''"""The bench's SDK floor: the Pulumi Python SDK imported and one stack output, no resource."""
import pulumi

pulumi.export("floor", True)
'''


def bench_floor(bench: Bench) -> None:
    """No-change previews of an empty program with the project's venv, timed like the real one.

    Its process CPU is the interpreter, the Pulumi SDK's import and runtime set-up
    and the shutdown handshake: a cost no Python program can go below. The real
    program's CPU above this floor is what its own code costs.
    """
    project = bench.scratch / "floor"
    project.mkdir(parents=True)
    (project / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "astrago-floor", "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(ROOT / ".venv")}}}))
    (project / "astrago_program.py").write_text(FLOOR_PROGRAM)
    shutil.copy2(ROOT / "bench" / "program_timer.py", project / "__main__.py")
    command = auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True)
    workspace = auto.LocalWorkspace(work_dir=str(project), env_vars=bench.env, secrets_provider="passphrase", pulumi_command=command)
    stack = E2EStack(stack=auto.Stack.create("bench-floor", workspace), project=project, env=bench.env)
    try:
        bench.pulumi(stack, "up", "--yes", "--skip-preview")
        for round_ in range(1, bench.runs + 1):
            wall, record = bench.preview(stack, expect="none")
            bench.figures.add("floor.preview_nochange", wall)
            bench.figures.add("floor.program_cpu", record["cpu_s"])
            bench.program.setdefault("floor", []).append(record)
            bench.log(f"[{round_}] empty program: preview {wall:.1f}s (program cpu {record['cpu_s']:.2f}s)")
    finally:
        _cleanup(bench, stack)


def bench_scale(bench: Bench, count: int) -> None:
    """A synthetic catalog of `count` releases: up from empty, then a no-change preview, per round."""
    work = bench.scratch / f"scale-{count}"
    project = bench_project(work / "project")
    names = write_synthetic(project, count)
    sync_standins(project, work)
    stack = new_stack(project, bench.env, "stage", {}, prefix=f"bench{count}")
    # The stage stack's per-release values name releases the synthetic catalog does not have.
    stack_file = project / f"Pulumi.{stack.name}.yaml"
    settings = yaml.safe_load(stack_file.read_text())
    settings["config"].pop("astrago-deploy:releases", None)
    stack_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    try:
        for round_ in range(1, bench.runs + 1):
            wall, recorder = bench.up(stack)
            if set(release_durations(recorder)) != set(names):
                raise BenchError(f"up of the synthetic catalog of {count} recorded {len(recorder.windows())} releases")
            bench.figures.add(f"scale.{count}.up", wall)
            bench.figures.add(f"scale.{count}.up_release_sum", sum(release_durations(recorder).values()))
            preview_wall, record = bench.preview(stack, expect="none")
            bench.figures.add(f"scale.{count}.preview_nochange", preview_wall)
            bench.figures.add(f"scale.{count}.program_cpu", record["cpu_s"])
            bench.program.setdefault(f"scale.{count}", []).append(record)
            bench.destroy(stack)
            bench.log(f"[{round_}] {count} releases: up {wall:.1f}s, no-change preview {preview_wall:.1f}s (program cpu {record['cpu_s']:.2f}s)")
    finally:
        _cleanup(bench, stack)


def bench_realistic(bench: Bench) -> None:
    """The realistic set: what rendering every release costs a no-change preview, and what Helmfile's diff costs.

    Deployed once (`up` is timed too). Each round then runs, alternating with
    Helmfile as bench_full does: a no-change preview with a warm render cache
    (every release's inputs unchanged since the last preview), one with an
    empty cache (every release rendered by Helm against the cluster), one with
    the render switched off, and `helmfile diff` of the same releases and
    values, with helm-diff's `--dry-run=server` (lookup answered by the
    cluster, as in our render). Helmfile's diff renders each chart anew, so
    harbor's generated certificates show as changes there (exit 2); any
    other exit fails the bench.
    """
    work = bench.scratch / "realistic"
    project = bench_project(work / "project")
    charts = build_realistic_charts_dir(work / "charts")
    stack = new_stack(project, bench.env, "dev", {
        "chartsDir": str(charts),
        "cluster": {"externalIP": "127.0.0.1", "domain": "astrago.localhost"},
        "releases": {"harbor": {"enabled": True}},
    }, prefix="benchreal")
    deployment = resolve_stack(stack.name, project)
    helmfile = write_helmfile(deployment, project, work / "helmfile", HELM)
    cache = project / RENDER_CACHE
    bench.log(f"realistic set: {len(deployment.releases)} releases; helmfile {helmfile}")
    try:
        wall, recorder = bench.up(stack)
        if set(release_durations(recorder)) != set(deployment.releases):
            raise BenchError(f"up of the realistic set recorded {sorted(release_durations(recorder))}, expected {sorted(deployment.releases)}")
        bench.figures.add("realistic.up", wall)
        releases = len(deployment.releases)

        def check(record: dict[str, float], what: str, rendered: int, cached: int) -> None:
            # The program's record says how many releases its render did and how many the cache answered.
            if (record.get("rendered"), record.get("cached")) != (rendered, cached):
                raise BenchError(f"the {what} preview rendered {record.get('rendered')} release(s), {record.get('cached')} from the cache; "
                                 f"expected {rendered}, {cached} from the cache")

        # The first preview after `up` renders every release against its new revision: it warms the cache.
        bench.preview(stack, expect="none")
        for round_ in range(1, bench.runs + 1):
            warm, record = bench.preview(stack, expect="none")
            check(record, "warm-cache", releases, releases)
            bench.figures.add("realistic.preview_nochange", warm)
            bench.program.setdefault("realistic", []).append(record)
            # The same work: our render is a server dry run (lookup answered by the cluster), so helm-diff's is too;
            # without it bitnami's upgrade check refuses keycloak, as it does for a person running `helmfile diff`.
            diff_wall, result = bench.helmfile(helmfile, "diff", "--skip-deps", "--suppress-secrets", "--detailed-exitcode",
                                               "--diff-args", "--dry-run=server", ok=(0, 2))
            bench.figures.add("realistic.helmfile_diff_nochange", diff_wall)
            for entry in cache.glob("*.json"):
                entry.unlink()
            cold, record = bench.preview(stack, expect="none")
            check(record, "empty-cache", releases, 0)
            bench.figures.add("realistic.preview_coldcache", cold)
            bare, record = bench.preview(stack, expect="none", render=False)
            check(record, "no-render", 0, 0)
            bench.figures.add("realistic.preview_norender", bare)
            bench.log(f"[{round_}] realistic: preview {warm:.1f}s warm, {cold:.1f}s empty cache, {bare:.1f}s no render; "
                      f"helmfile diff {diff_wall:.1f}s (exit {result.returncode})")
    finally:
        _cleanup(bench, stack)


def _cleanup(bench: Bench, stack: E2EStack) -> None:
    """Leave nothing deployed: destroy (a no-op when already empty), then remove the stack."""
    try:
        bench.destroy(stack)
    except BenchError as error:
        bench.notes.append(f"cleanup of {stack.name} failed: {error}")
    finally:
        stack.stack.workspace.remove_stack(stack.name)


def ratio(figures: Figures, numerator: str, denominator: str) -> float | None:
    top, bottom = figures.median(numerator), figures.median(denominator)
    return None if top is None or bottom is None or bottom == 0 else top / bottom


def report(bench: Bench, started: datetime, elapsed: float) -> dict[str, Any]:
    """The results document (also what the table prints)."""
    targets = {}
    for label, (top, bottom, limit) in TARGETS.items():
        value = ratio(bench.figures, top, bottom)
        targets[label] = {"ratio": value, "target": limit, "met": None if value is None else value <= limit, "of": [top, bottom]}
    ratios = {label: {"ratio": ratio(bench.figures, top, bottom), "of": [top, bottom]} for label, (top, bottom) in RATIOS.items()}
    program = {
        scope: {key: statistics.median(r[key] for r in records) for key in records[0]}
        for scope, records in bench.program.items() if records
    }
    return {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "runs": bench.runs,
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "python": platform.python_version()},
        "tools": {"pulumi": _version([str(TOOLS / "pulumi"), "version"]), "helm": _version([str(HELM), "version", "--short"]),
                  "helmfile": _version([str(HELMFILE), "version", "--output", "short"]), "helm-diff": _version([str(HELM_DIFF), "version"])},
        "figures_s": bench.figures.summary(),
        "targets": targets,
        "ratios": ratios,
        "program_medians_s": program,
        "notes": bench.notes,
    }


def _version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "HELMFILE_UPGRADE_NOTICE_DISABLED": "1"})
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "?"


def table(doc: dict[str, Any]) -> str:
    lines = [f"bench {doc['started']}: {doc['runs']} runs per figure, {doc['elapsed_s'] / 60:.1f} min, load average at end {doc['machine']['load_avg_at_end'][0]:.2f}",
             "", f"{'figure (seconds)':<44} {'median':>8} {'min':>8} {'max':>8} {'n':>3}"]
    for name, f in doc["figures_s"].items():
        lines.append(f"{name:<44} {f['median']:>8.2f} {f['min']:>8.2f} {f['max']:>8.2f} {f['n']:>3}")
    lines += ["", f"{'target (ratio of medians, this run)':<52} {'ratio':>7} {'target':>8}  met"]
    for label, t in doc["targets"].items():
        shown = "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}x"
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "NO")
        lines.append(f"{label:<52} {shown:>7} {'<= ' + format(t['target'], 'g') + 'x':>8}  {met}")
    lines += ["", f"{'comparison (ratio of medians, this run)':<52} {'ratio':>7}"]
    for label, r in doc["ratios"].items():
        lines.append(f"{label:<52} {'n/a' if r['ratio'] is None else format(r['ratio'], '.2f') + 'x':>7}")
    for scope, medians in doc["program_medians_s"].items():
        lines += ["", f"program's own time in a no-change preview ({scope}, medians, seconds):",
                  "  " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items())]
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=MIN_RUNS, help=f"runs per figure (default and minimum {MIN_RUNS})")
    parser.add_argument("--scales", default="12,50,100", help="synthetic catalog sizes, comma-separated ('' for none)")
    parser.add_argument("--skip-full", action="store_true", help="skip the full-catalog and Helmfile comparison")
    parser.add_argument("--skip-realistic", action="store_true", help="skip the realistic set (render cost, Helmfile diff)")
    parser.add_argument("--smoke", action="store_true", help="allow fewer than 3 runs (to check the bench itself; figures are not reportable)")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the bench cluster running afterwards")
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS and not args.smoke:
        parser.error(f"--runs must be at least {MIN_RUNS} (medians of fewer runs are not reported); --smoke allows it for checking the bench")
    try:
        scales = [int(s) for s in args.scales.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--scales {args.scales!r}: give whole numbers separated by commas, e.g. 12,50,100")
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        preflight()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="astrago-bench-"))
    bench = Bench(scratch=scratch, env=engine_env(scratch), runs=args.runs)
    if args.smoke:
        bench.notes.append(f"smoke run ({args.runs} run(s) per figure): not a reportable result")
    print(f"bench: starting cluster {CLUSTER_NAME} (port base {CLUSTER_PORT_BASE}); scratch {scratch}", flush=True)
    status = 0
    try:
        cluster("up")
        bench_floor(bench)
        if not args.skip_full:
            bench_full(bench)
        if not args.skip_realistic:
            bench_realistic(bench)
        for count in scales:
            bench_scale(bench, count)
    except (BenchError, auto.CommandError, subprocess.CalledProcessError) as error:
        print(f"bench: failed: {error}", file=sys.stderr)
        bench.notes.append(f"failed: {str(error)[:2000]}")
        status = 1
    finally:
        if not args.keep_cluster:
            cluster("down")
        floor = bench.figures.median("floor.program_cpu")
        if floor is not None:
            for cpu in bench.figures.samples.get("full.program_cpu", []):
                bench.figures.add("full.program_cpu_above_floor", cpu - floor)
        doc = report(bench, started, time.monotonic() - clock)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(table(doc))
        print(f"\nresults: {out.relative_to(ROOT)}")
        shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
