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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from bench.harness import (
    CHANGED_KEY,
    CHANGED_VALUE,
    CLUSTER_NAME,
    CLUSTER_PORT_BASE,
    HELM,
    HELM_DIFF,
    HELMFILE,
    MIN_RUNS,
    RATIOS,
    RESULTS,
    ROOT,
    TARGETS,
    TOOLS,
    Bench,
    BenchError,
    Figures,
    bench_project,
    cluster,
    engine_env,
    preflight,
)
from bench.helmfile_gen import write_helmfile
from bench.synthetic import write_synthetic
from model.deployment import resolve_stack
from render.releases import CACHE_DIR as RENDER_CACHE
from tests.support.engine import KWOK_VALUES, E2EStack, Recorder, new_stack, sync_standins
from tests.support.standin_charts import build_realistic_charts_dir


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
