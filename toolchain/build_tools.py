"""Build the pinned toolchain from its Go modules into a project-local folder.

Runs with the system Python and no third-party package (it is the first thing
`make setup` runs). For each module in ``toolchain/tools.toml`` it builds the
listed binaries into ``.tools/bin`` unless a stamp shows nothing changed, so a
second run costs seconds and a changed pin rebuilds only its own module.
Exit codes: 0 success, 1 a build failed, 2 a precondition (Go, network) failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLCHAIN = ROOT / "toolchain"
TOOLS = ROOT / ".tools"
BIN = TOOLS / "bin"
LOGS = TOOLS / "logs"
STAMPS = TOOLS / "stamps"
# Provider plugins live outside PATH and are registered into the project's
# plugin cache, so the engine finds them by name and version, never "ambient".
PLUGINS = TOOLS / "plugins"
PULUMI_HOME = TOOLS / "pulumi-home"

# The upstream modules declare `go 1.26.0`; an older Go would try to
# download a newer toolchain, which this site cannot do.
MIN_GO = (1, 26)
# A cold build of the largest module (the Kubernetes provider) takes about
# half an hour on two cores; anything far beyond that is a hang.
BUILD_TIMEOUT_S = 60 * 60
# What each stage builds, in order: a later stage includes the earlier ones.
STAGES = ("up", "test", "bench")
# Two module builds at once: Go compiles on every core, but links one binary on one core, and
# the large links (the provider, the control plane, the CLI) leave the other core idle.
JOBS = 2
# Matches the errors Go prints when it cannot reach the module proxy.
NETWORK_ERROR = re.compile(
    r"dial tcp|no such host|connection refused|i/o timeout|TLS handshake timeout|"
    r"proxyconnect|network is unreachable",
)


@dataclass(frozen=True)
class Binary:
    """One program built from a module."""

    name: str
    """File name in .tools/bin."""
    package: str
    """Go package path (or "." for the module's own main package)."""
    version_args: tuple[str, ...]
    """Arguments that make the program print its version."""


@dataclass(frozen=True)
class Module:
    """One Go module under toolchain/go, pinned by its go.mod and go.sum."""

    name: str
    """Folder name under toolchain/go."""
    version: str
    """Upstream version the binaries must report."""
    binaries: tuple[Binary, ...]
    """Programs built from this module."""
    ldflags: str
    """Extra linker flags (version stamping)."""
    generate: tuple[str, ...]
    """Command run in the module folder before building (embedded files)."""
    plugin: dict[str, str] | None
    """Pulumi plugin to register from the first binary: kind, name, version."""
    outputs: tuple[str, ...] = ()
    """Other files the generate step puts in .tools/bin (checked like binaries)."""
    needed_for: str = "up"
    """The first target that needs it: "up" (`make setup` builds it), "test" (built when `make test`
    or a target using it first runs), "bench" (`make bench-setup` only). Named modules are always built."""

    @property
    def bench_only(self) -> bool:
        return self.needed_for == "bench"

    @property
    def path(self) -> Path:
        return TOOLCHAIN / "go" / self.name


def load_modules(path: Path = TOOLCHAIN / "tools.toml") -> list[Module]:
    """Read the pinned module list; raise ValueError naming a bad entry."""
    data = tomllib.loads(path.read_text())
    modules = []
    for name, entry in data.get("module", {}).items():
        try:
            binaries = tuple(
                Binary(b["name"], b["package"], tuple(b.get("version_args", ["--version"])))
                for b in entry["binaries"]
            )
            modules.append(
                Module(
                    name=name,
                    version=entry["version"],
                    binaries=binaries,
                    ldflags=entry.get("ldflags", ""),
                    generate=tuple(entry.get("generate", [])),
                    plugin=entry.get("plugin"),
                    outputs=tuple(entry.get("outputs", [])),
                    needed_for="bench" if entry.get("bench_only") else str(entry.get("needed_for", "up")),
                )
            )
        except KeyError as missing:
            raise ValueError(f"{path}: [module.{name}] lacks key {missing}") from None
        if modules[-1].needed_for not in STAGES:
            raise ValueError(f"{path}: [module.{name}] needed_for must be one of {list(STAGES)}")
        if not (TOOLCHAIN / "go" / name / "go.mod").is_file():
            raise ValueError(f"{path}: [module.{name}] has no toolchain/go/{name}/go.mod")
    return modules


def go_version() -> tuple[int, int]:
    """Return the Go version on PATH; exit 2 with a fix when it is unusable."""
    go = shutil.which("go")
    if go is None:
        sys.exit("setup: Go is not on PATH. Install Go >= 1.26 (Debian: golang-1.26 or go.dev/dl) and rerun `make setup`.")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match:
        sys.exit(f"setup: cannot read the Go version from `go env GOVERSION` (got {out!r}).")
    version = (int(match[1]), int(match[2]))
    if version < MIN_GO:
        sys.exit(f"setup: Go {out} is too old; the pinned modules need Go >= {MIN_GO[0]}.{MIN_GO[1]}. Upgrade Go and rerun `make setup`.")
    return version


def stamp_of(module: Module, go: tuple[int, int]) -> str:
    """Digest of everything that decides the module's binaries."""
    digest = hashlib.sha256()
    settings = [module.version, module.ldflags, module.generate, module.plugin, module.outputs, go, "cgo=0", [b.__dict__ for b in module.binaries]]
    digest.update(json.dumps(settings, default=list).encode())
    for file in sorted(module.path.iterdir()):
        if file.is_file() and (file.suffix in {".mod", ".sum", ".go", ".sh"}):
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def reuse_installed_pulumi(module: Module) -> bool:
    """Link a `pulumi` of the pinned version already on PATH instead of building it."""
    ours = BIN / "pulumi"
    path_dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d).resolve() != BIN.resolve()]
    found = shutil.which("pulumi", path=os.pathsep.join(path_dirs))
    if not found:
        return False
    try:
        out = subprocess.run([found, "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return False
    if out != module.version:
        return False
    BIN.mkdir(parents=True, exist_ok=True)
    if ours.is_symlink() or ours.exists():
        ours.unlink()
    ours.symlink_to(found)
    # The pulumi distribution ships its language hosts beside the CLI.
    for sibling in Path(found).parent.glob("pulumi-language-python*"):
        target = BIN / sibling.name
        if not target.exists():
            target.symlink_to(sibling)
    print(f"setup: using the installed {found} ({out}); not building the Pulumi CLI")
    return True


def build(module: Module, go: tuple[int, int], force: bool) -> bool:
    """Build one module if its stamp changed; return True when it was built."""
    stamp_file = STAMPS / f"{module.name}.sha256"
    stamp = stamp_of(module, go)
    out_dir = PLUGINS if module.plugin else BIN
    have_all = all((out_dir / b.name).exists() for b in module.binaries) and all((BIN / f).exists() for f in module.outputs)
    if not force and have_all and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return False
    if module.name == "pulumi" and not force and reuse_installed_pulumi(module):
        stamp_file.write_text(stamp)
        return False
    log = LOGS / f"{module.name}.log"
    env = {
        **os.environ,
        # go.sum is the pin: refuse to add or change a checksum while building.
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOTOOLCHAIN": "local",
        # Static binaries, as upstream releases them: they run on any site they are carried to.
        "CGO_ENABLED": "0",
    }
    started = time.monotonic()
    print(f"setup: building {module.name} {module.version} -> {', '.join(b.name for b in module.binaries)} (log: {log.relative_to(ROOT)})", flush=True)
    with log.open("w") as out:
        for step in module.generate:
            run_logged(["bash", "-c", step], module, log, out, env)
        packages = [b.package for b in module.binaries]
        ldflags = f"-s -w {module.ldflags}".strip()
        cmd = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out_dir}/", *packages]
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        run_logged(cmd, module, log, out, env)
    for b in module.binaries:
        if b.package == ".":
            built = out_dir / module.path.name
            if built != out_dir / b.name:
                built.rename(out_dir / b.name)
    if module.plugin:
        register_plugin(module, log)
    stamp_file.write_text(stamp)
    print(f"setup: built {module.name} in {time.monotonic() - started:.0f}s", flush=True)
    return True


def run_logged(cmd: list[str], module: Module, log: Path, out, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Run a build step with its output in the module's log; exit naming the failure."""
    try:
        result = subprocess.run(cmd, cwd=module.path, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        sys.exit(f"setup: building {module.name} did not finish within {BUILD_TIMEOUT_S}s; see {log}")
    if result.returncode != 0:
        out.flush()
        text = log.read_text()
        tail = "\n".join(text.splitlines()[-15:])
        if NETWORK_ERROR.search(text):
            print(f"setup: cannot reach the Go module proxy ({os.environ.get('GOPROXY') or 'default'}) to fetch {module.name}'s modules.\n"
                  f"Check the network or GOPROXY, then rerun `make setup`. Log: {log}\n{tail}", file=sys.stderr)
            sys.exit(2)
        print(f"setup: building {module.name} {module.version} failed (exit {result.returncode}). Log: {log}\n{tail}", file=sys.stderr)
        sys.exit(1)


def register_plugin(module: Module, log: Path) -> None:
    """Install a provider binary into the project's plugin cache (PULUMI_HOME)."""
    assert module.plugin is not None
    binary = PLUGINS / module.binaries[0].name
    cmd = [str(BIN / "pulumi"), "plugin", "install", module.plugin["kind"], module.plugin["name"], module.plugin["version"], "--file", str(binary), "--reinstall"]
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=300,
                                env={**os.environ, "PULUMI_HOME": str(PULUMI_HOME), "PULUMI_SKIP_UPDATE_CHECK": "1"})
    if result.returncode != 0:
        sys.exit(f"setup: registering plugin {module.plugin['name']} {module.plugin['version']} failed; log: {log}")


def build_all(modules: list[Module], go: tuple[int, int], force: bool, jobs: int) -> list[str]:
    """Build modules, `jobs` at a time; the CLI first, since plugins are registered with it."""
    cli = [m for m in modules if m.name == "pulumi"]
    built = [m.name for m in cli if build(m, go, force)]
    lock = threading.Lock()

    def one(module: Module) -> None:
        if build(module, go, force):
            with lock:
                built.append(module.name)

    # Largest first, so the long provider build does not start last.
    rest = sorted((m for m in modules if m.name != "pulumi"), key=lambda m: m.plugin is None)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in [pool.submit(one, m) for m in rest]:
            future.result()  # a failed build exits (SystemExit) here, naming its log
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="build only these modules (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    parser.add_argument("--for", dest="stage", choices=STAGES, default="up",
                        help="build what this stage needs: up (`make setup`), test (also the tools only tests and bundles use), bench (everything)")
    parser.add_argument("--bench", action="store_true", help="the same as --for bench")
    parser.add_argument("--jobs", type=int, default=JOBS, help="modules built at once (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.bench:
        args.stage = "bench"
    try:
        modules = load_modules()
    except ValueError as error:
        print(f"setup: {error}", file=sys.stderr)
        return 2
    unknown = set(args.modules) - {m.name for m in modules}
    if unknown:
        print(f"setup: unknown module(s) {sorted(unknown)}; known: {[m.name for m in modules]}", file=sys.stderr)
        return 2
    go = go_version()
    for folder in (BIN, LOGS, STAMPS, PLUGINS):
        folder.mkdir(parents=True, exist_ok=True)
    # Tools a later stage needs cost minutes of compiling that `make setup` does not need.
    reach = STAGES[: STAGES.index(args.stage) + 1]
    wanted = [m for m in modules if m.name in args.modules] if args.modules else [m for m in modules if m.needed_for in reach]
    built = build_all(wanted, go, args.force, max(1, args.jobs))
    print(f"setup: toolchain ready in {BIN.relative_to(ROOT)} ({'built: ' + ', '.join(built) if built else 'nothing to build'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
