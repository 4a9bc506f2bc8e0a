"""`python -m bench.profile`: where a no-change preview of the full catalog spends its time.

On the bench cluster (started if needed, left running with --keep-cluster),
after one `pulumi up` of the full catalog with stand-in charts, it runs
no-change previews that each look at one side, and prints a report (also
written under bench/results/profile-<timestamp>/):

- the program: the whole Python process under cProfile with a CPU clock,
  from interpreter start (a sitecustomize.py on PYTHONPATH starts it, so the
  language host's exec shim and the Pulumi SDK import are included) to exit;
  self time by area (import machinery, Pulumi SDK, gRPC/protobuf,
  pulumi_kubernetes, YAML, this project's model/ and components/) and the
  cumulative time of the program's own steps (load_catalog, prepare,
  chart digests, lock verification, YAML parsing, the components);
- the engine and the provider: the CLI's verbose log (-v=7) gives each
  provider call (Check, Diff, ...) with its duration, and the time from the
  CLI's first log line to the language host's Run and to the end;
- the CLI's own CPU: `--profiling` writes a Go CPU profile, summarised with
  `go tool pprof -top`.
"""

from __future__ import annotations

import argparse
import json
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT, TOOLS, Bench, BenchError, bench_project, cluster, engine_env, preflight
from tests.support.engine import KWOK_VALUES, E2EStack, new_stack, sync_standins

SITECUSTOMIZE = '''"""bench.profile: profile this whole Python process (CPU clock) into a file of its own at exit."""
import atexit, cProfile, os, sys, time
_dir = os.environ.get("ASTRAGO_BENCH_WHOLE_PROFILE")
if _dir:
    _tag = os.path.basename(sys.argv[0] or "python") if sys.argv else "python"
    _profiler = cProfile.Profile(time.process_time)
    atexit.register(_profiler.dump_stats, os.path.join(_dir, f"{_tag}.{os.getpid()}.prof"))
    atexit.register(_profiler.disable)
    _profiler.enable()
'''
# Self time is attributed to an area by the file the function lives in.
AREAS = (
    ("import machinery (reading, unmarshalling, executing modules)", re.compile(r"<frozen importlib|<frozen zipimport|^~$|marshal")),
    ("this project: model/", re.compile(r"/model/")),
    ("this project: components/", re.compile(r"/components/")),
    ("this project: __main__ / bench wrapper", re.compile(r"astrago_program\.py|/__main__\.py")),
    ("pulumi_kubernetes SDK", re.compile(r"/pulumi_kubernetes/")),
    ("Pulumi SDK", re.compile(r"/site-packages/pulumi/|pulumi-language-python-exec")),
    ("gRPC / protobuf", re.compile(r"/grpc/|/google/protobuf/")),
    ("PyYAML", re.compile(r"/yaml/")),
    ("asyncio", re.compile(r"/asyncio/")),
)
OWN_STEPS = (
    ("load_catalog", "model/catalog.py", "load_catalog"),
    ("prepare (whole pre-flight)", "model/deployment.py", "prepare"),
    ("verify_lock", "model/charts.py", "verify_lock"),
    ("chart_digest (own charts)", "model/charts.py", "chart_digest"),
    ("sha256_file (archives)", "model/charts.py", "sha256_file"),
    ("chart_version", "model/charts.py", "chart_version"),
    ("yaml.safe_load (all callers)", "yaml/__init__.py", "safe_load"),
    ("Platform (components)", "components/platform.py", "__init__"),
    ("LocalRelease", "components/local_release.py", "__init__"),
)
# Pulumi's -v=7 log is JSON lines; provider calls read "Provider[0x...].Check(<urn>) executing|success".
PROVIDER_CALL = re.compile(r"^Provider\[[^\]]+\]\.(\w+)\((urn:[^,)]*)[^)]*\):? (executing|success|failed)")
TIMELINE = (
    ("language host started", re.compile(r"^langhost\[python\]\.GetPluginInfo\(\) executing")),
    ("update (preview) starts", re.compile(r"^\*\*\* Starting Update")),
    ("program process launched (langhost Run)", re.compile(r"^langhost\[python\]\.Run\(")),
    ("first RegisterResource (Stack)", re.compile(r"^ResourceMonitor\.RegisterResource received")),
)
def _log(text: str) -> list[tuple[float, str]]:
    """(seconds since the first line, message) of every JSON log line."""
    rows = []
    for line in text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            rows.append((datetime.fromisoformat(entry["time"][:26].rstrip("Z")).timestamp(), str(entry.get("msg", ""))))
    first = rows[0][0] if rows else 0.0
    return [(at - first, msg) for at, msg in rows]


def program_profile(stats_file: Path) -> dict[str, Any]:
    """Self time by area and the cumulative time of the program's own steps."""
    stats = pstats.Stats(str(stats_file))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in table.values())
    areas: dict[str, float] = defaultdict(float)
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in table.items():
        where = f"{file}:{func}"
        area = next((name for name, pattern in AREAS if pattern.search(where)), "other (stdlib, builtins)")
        areas[area] += tt
    steps = {}
    for label, file_suffix, func in OWN_STEPS:
        rows = [(nc, ct) for (file, _line, name), (_cc, nc, _tt, ct, _callers) in table.items() if file.endswith(file_suffix) and name == func]
        steps[label] = {"calls": sum(r[0] for r in rows), "cumulative_s": max((r[1] for r in rows), default=0.0) if func == "__init__" else sum(r[1] for r in rows)}
    imports = [(f"{file}", ct) for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in table.items() if name == "<module>"]
    heaviest = sorted(imports, key=lambda r: r[1], reverse=True)[:12]
    return {"cpu_total_s": total, "self_time_by_area_s": dict(sorted(areas.items(), key=lambda kv: -kv[1])),
            "own_steps": steps, "heaviest_module_imports_cumulative_s": heaviest}


def provider_calls(log: str) -> dict[str, Any]:
    """Provider calls in the CLI's -v=7 log by resource type and method, and the preview's timeline."""
    rows = _log(log)
    started: dict[tuple[str, str], float] = {}
    per: dict[str, list[float]] = defaultdict(list)
    for at, msg in rows:
        match = PROVIDER_CALL.match(msg)
        if not match:
            continue
        key = (match[1], match[2])
        if match[3] == "executing":
            started[key] = at
        elif key in started:
            typ = match[2].rsplit("::", 1)[0].rsplit("$", 1)[-1].rsplit("::", 1)[-1]
            per[f"{typ}.{match[1]}"].append(at - started.pop(key))
    timeline = {}
    for label, pattern in TIMELINE:
        timeline[label] = next((round(at, 3) for at, msg in rows if pattern.search(msg)), None)
    registrations = [at for at, msg in rows if msg.startswith("ResourceMonitor.RegisterResource received")]
    timeline["last RegisterResource"] = round(max(registrations), 3) if registrations else None
    timeline["end of the log"] = round(rows[-1][0], 3) if rows else None
    return {"timeline_s": timeline,
            "provider_calls": {k: {"n": len(v), "total_s": round(sum(v), 3), "max_s": round(max(v), 3)} for k, v in sorted(per.items())}}


def go_profile(prefix: Path) -> str:
    cpu = sorted(prefix.parent.glob(f"{prefix.name}*.cpu"))
    if not cpu:
        return "(no CPU profile written)"
    out = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=25", str(TOOLS / "pulumi"), str(cpu[-1])],
                         capture_output=True, text=True, timeout=300)
    return out.stdout or out.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-cluster", action="store_true")
    args = parser.parse_args(argv)
    preflight()
    out = RESULTS / f"profile-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="astrago-profile-"))
    bench = Bench(scratch=scratch, env=engine_env(scratch), runs=1)
    site = scratch / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    report: dict[str, Any] = {}
    stack: E2EStack | None = None
    try:
        cluster("up")
        project = bench_project(scratch / "full" / "project")
        sync_standins(project, scratch / "full")
        stack = new_stack(project, bench.env, "stage", {"releases": KWOK_VALUES}, prefix="profile")
        bench.up(stack)
        bench.preview(stack, expect="none")  # warm: bytecode caches, plugin cache
        profiles = out / "python"
        profiles.mkdir()
        stack.env = {**stack.env, "PYTHONPATH": str(site), "ASTRAGO_BENCH_WHOLE_PROFILE": str(profiles)}
        wall, record = bench.preview(stack, expect="none")
        report["preview_under_cprofile_s"] = wall
        report["program_record"] = record
        # The program runs under the exec shim; other Python processes (a policy pack, say) apart.
        for prof in sorted(profiles.glob("*.prof")):
            report[f"python:{prof.name}"] = program_profile(prof)
        stack.env = {k: v for k, v in stack.env.items() if k not in ("PYTHONPATH", "ASTRAGO_BENCH_WHOLE_PROFILE")}
        started = time.monotonic()
        _, result = bench.pulumi(stack, "preview", "-v=7", "--logtostderr")
        report["preview_with_v7_log_s"] = time.monotonic() - started
        (out / "engine-v7.log").write_text(result.stderr)
        report["engine"] = provider_calls(result.stderr)
        prefix = out / "cli"
        wall, _ = bench.pulumi(stack, "preview", "--profiling", str(prefix))
        report["preview_with_go_profile_s"] = wall
        report["cli_cpu_top"] = go_profile(prefix)
        plain, record = bench.preview(stack, expect="none")
        report["preview_plain_s"] = plain
        report["program_record_plain"] = record
    except BenchError as error:
        print(f"profile: failed: {error}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            try:
                bench.destroy(stack)
            finally:
                stack.stack.workspace.remove_stack(stack.name)
        if not args.keep_cluster:
            cluster("down")
        shutil.rmtree(scratch, ignore_errors=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "cli_cpu_top"}, indent=2, default=str))
    print(report["cli_cpu_top"])
    print(f"profile: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
