"""`make doctor`: every tool with its path and version, the state backend, the cluster.

Exits non-zero when anything is missing or stale, naming the `make` target
that fixes it. Uses only the standard library (it must work before setup).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_tools import BIN, PLUGINS, PULUMI_HOME, ROOT, STAMPS, go_version, load_modules, stamp_of

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
# Pinned in requirements.txt; the engine's plugins must match what these ask for.
PYTHON_PACKAGES = ("pulumi", "pulumi-kubernetes", "pulumi-command", "pyyaml", "pytest")


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"<{error}>"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else f"<exit {out.returncode}>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-args", default="", help="options passed to `cluster/cluster.py status` (another cluster's name, ports, ...)")
    args = parser.parse_args(argv)
    problems: list[str] = []
    print("tools:")
    go = go_version()
    for module in load_modules():
        if module.needed_for != "up" and not any((BIN / b.name).exists() for b in module.binaries):
            built_by = "`make bench-setup`" if module.bench_only else "`make test-tools` (and `make test`, on first use)"
            print(f"  {module.name:26} (needed by {module.needed_for} only, not built yet: {built_by})")
            continue
        folder = PLUGINS if module.plugin else BIN
        stamp = STAMPS / f"{module.name}.sha256"
        stale = not stamp.is_file() or stamp.read_text() != stamp_of(module, go)
        for binary in module.binaries:
            path = folder / binary.name
            if not path.exists():
                print(f"  {binary.name:26} MISSING ({path})")
                problems.append(f"{binary.name} is missing: run `make setup`")
                continue
            if not binary.version_args:
                # A provider that prints no version; its registered plugin version is checked below.
                print(f"  {binary.name:26} {'(see plugins)':40} {path.resolve()}{'  (stale)' if stale else ''}")
                continue
            version = first_line([str(path), *binary.version_args])
            print(f"  {binary.name:26} {version:40} {path.resolve()}{'  (stale)' if stale else ''}")
            if module.version.lstrip("v") not in version:
                problems.append(f"{binary.name} reports {version!r}, pinned {module.version}: run `make setup`")
        if stale:
            problems.append(f"module {module.name} changed since it was built: run `make setup`")
    print("python:")
    if not VENV_PYTHON.exists():
        print(f"  virtualenv MISSING ({VENV_PYTHON.parent.parent})")
        problems.append("the virtualenv is missing: run `make setup`")
    else:
        probe = f"import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {PYTHON_PACKAGES!r}}}))"
        versions = json.loads(first_line([str(VENV_PYTHON), "-c", probe]) or "{}")
        for package in PYTHON_PACKAGES:
            print(f"  {package:26} {versions.get(package, 'MISSING')}")
    print("plugins (project cache):")
    env = {**os.environ, "PULUMI_HOME": str(PULUMI_HOME), "PULUMI_SKIP_UPDATE_CHECK": "1"}
    listing = subprocess.run([str(BIN / "pulumi"), "plugin", "ls", "--json"], capture_output=True, text=True, timeout=60, env=env)
    plugins = json.loads(listing.stdout or "[]") if listing.returncode == 0 else []
    for plugin in plugins:
        print(f"  {plugin['kind']:8} {plugin['name']:18} {plugin['version']:10} {plugin.get('path', '')}")
    for module in load_modules():
        if module.plugin and not any(p["name"] == module.plugin["name"] and p["version"] == module.plugin["version"] for p in plugins):
            problems.append(f"plugin {module.plugin['name']} {module.plugin['version']} is not in {PULUMI_HOME}: run `make setup`")
    backend = os.environ.get("PULUMI_BACKEND_URL", f"file://{ROOT / '.state' / 'backend'}")
    print(f"state backend: {backend}")
    print("cluster:")
    status = subprocess.run([sys.executable, str(ROOT / "cluster" / "cluster.py"), "status", *shlex.split(args.cluster_args)],
                            capture_output=True, text=True, timeout=120)
    for line in (status.stdout + status.stderr).strip().splitlines():
        print(f"  {line}")
    if status.returncode != 0:
        problems.append("the local cluster is not running or not healthy: run `make cluster` (or set KUBECONFIG to another cluster)")
    if problems:
        print("\nproblems:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nall good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
