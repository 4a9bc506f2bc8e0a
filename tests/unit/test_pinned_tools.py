"""Nothing in the project runs a tool from PATH: helm, kubectl, crane, pulumi and helmfile are the pinned builds.

Python code names a tool through `cli.process.tool(name)` (the binary in
`.tools/bin`) or a path built from the tools folder; shell, make and workflow
code through `$(TOOLS)`/`.tools/bin` or the project's shim. A bare name as
the command of a subprocess, `shutil.which(name)`, or a shell line starting
with the name would run whatever the machine happens to have (here a kubectl
1.32 against a 1.36 cluster).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT

PINNED = {"helm", "kubectl", "crane", "pulumi", "helmfile", "kwokctl", "etcd"}
# Deliberate: `make setup` links an installed pulumi only when it reports the pinned version.
ALLOWED = {("toolchain/build_tools.py", "which('pulumi')")}
SHELL_COMMAND = re.compile(r"(?:^|[;&|]|\$\(|\bthen\b|\bdo\b|\bexec\b)\s*(" + "|".join(sorted(PINNED)) + r")\s")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", *patterns], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if line and (ROOT / line).is_file() and not line.startswith("toolchain/go/")]


def bare_calls_in_python(source: str) -> list[tuple[int, str]]:
    """(line, text) of every bare pinned-tool name used as a command in Python source.

    A command is a list or tuple starting with the name that is passed as a call's first
    argument, returned, or assigned to a name with `cmd`/`command` in it; and
    `shutil.which(name)`. Lists of names (tools to check, components) are not commands.
    """
    def command(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.List | ast.Tuple) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value in PINNED:
                return f"[{first.value!r}, ...]"
        return None

    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        candidates: list[ast.AST | None] = []
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name == "which" and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in PINNED:
                found.append((node.lineno, f"which({node.args[0].value!r})"))
            candidates.append(node.args[0] if node.args else None)
        elif isinstance(node, ast.Return) or (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and ("cmd" in t.id or "command" in t.id) for t in node.targets)):
            candidates.append(node.value)
        for candidate in candidates:
            text = command(candidate)
            if text and isinstance(candidate, ast.expr):
                found.append((candidate.lineno, text))
    return sorted(found)


def test_the_checker_finds_what_it_is_for() -> None:
    source = 'import shutil, subprocess\nsubprocess.run(["kubectl", "get"])\nshutil.which("helm")\nrun([tool("kubectl"), "get"])\n'
    assert [line for line, _ in bare_calls_in_python(source)] == [2, 3]
    assert SHELL_COMMAND.search("  kubectl get pods") and SHELL_COMMAND.search("x=$(helm version)")
    assert not SHELL_COMMAND.search('  "$TOOLS/kubectl" get pods') and not SHELL_COMMAND.search("# kubectl is pinned")


def test_no_python_code_runs_a_tool_from_path() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in tracked("*.py") for line, text in bare_calls_in_python(path.read_text())
                 if (path.relative_to(ROOT).as_posix(), text) not in ALLOWED]
    assert offenders == [], "use cli.process.tool(name) (the pinned build), not a tool from PATH:\n" + "\n".join(offenders)


def test_no_shell_make_or_workflow_code_runs_a_tool_from_path() -> None:
    offenders = []
    for path in tracked("*.sh", "Makefile", ".github/workflows/*.yml", "toolchain/shims/*", ".envrc"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if not line.lstrip().startswith("#!") else ""
            if SHELL_COMMAND.search(code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "call the pinned build ($(TOOLS)/<tool>, .tools/bin/<tool>), not a tool from PATH:\n" + "\n".join(offenders)


# The program, its commands and libraries reach a tool only through a wrapper in cli/; cluster/, toolchain/,
# bench/ and tests/ start processes of their own (the cluster, the builds, the measured runs).
THROUGH_CLI = ("__main__.py", "model", "commands", "components", "policy", "postrender", "audit", "offline", "render")


STARTERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}


def process_starts(source: str) -> list[tuple[int, str]]:
    """(line, text) of every use of subprocess's process starters and every import of cli.process's `run`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "subprocess" and node.attr in STARTERS:
            found.append((node.lineno, f"subprocess.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module in ("subprocess", "cli.process"):
            names = {a.name for a in node.names} & (STARTERS if node.module == "subprocess" else {"run"})
            found += [(node.lineno, f"from {node.module} import {name}") for name in sorted(names)]
    return sorted(found)


def test_the_process_checker_finds_what_it_is_for() -> None:
    source = ("import subprocess\nfrom cli.process import ToolError, run\nfrom cli.process import tool\n"
              "subprocess.run(['git'])\nexcept subprocess.TimeoutExpired: pass\nfrom subprocess import Popen\n")
    assert [line for line, _ in process_starts(source.replace("except subprocess.TimeoutExpired: pass", "x = subprocess.TimeoutExpired"))] == [2, 4, 6]


def test_only_cli_starts_the_tools() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in tracked(*(f"{part}/*.py" if not part.endswith(".py") else part for part in THROUGH_CLI))
                 for line, text in process_starts(path.read_text())]
    assert tracked("commands/*.py"), "the checker reads the commands"
    assert offenders == [], "call the tool through its wrapper in cli/ (cli/helm.py, cli/kubectl.py, cli/pulumi.py, ...):\n" + "\n".join(offenders)
