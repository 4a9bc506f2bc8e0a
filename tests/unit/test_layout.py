"""The folders are the architecture (ARCHITECTURE.md): each package imports only the packages below it.

model/ is plain functions; cli/ wraps the pinned tools; postrender/ is what Helm
runs; render/ and offline/ are libraries built on those; components/, policy/
and audit/ use them; commands/ are the entry points on top. An import that runs
back up (model importing cli, a library importing a command) fails here, with
the file and line, whether it sits at the top of the module or in a function.
"""

from __future__ import annotations

import ast

from tests.conftest import ROOT

PACKAGES = ("model", "cli", "postrender", "render", "offline", "components", "policy", "audit", "commands", "bench", "tests", "toolchain", "cluster")
# Package -> the project packages it may import besides itself.
MAY_IMPORT: dict[str, set[str]] = {
    # The post-render's plan (its description format, the patch folders) is made while a stack is prepared:
    # model.deployment reads it from postrender/, the one home of that format.
    "model": {"postrender"},
    "cli": {"model"},
    "postrender": {"model", "cli"},
    "render": {"model", "cli", "postrender"},
    "offline": {"model", "cli", "postrender"},
    "components": {"model", "cli", "postrender"},
    "policy": {"model", "cli"},
    "audit": {"model", "cli"},
    "commands": {"model", "cli", "postrender", "render", "offline", "audit"},
}


def project_imports(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import of a project package, in functions too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in PACKAGES]
    return found


def test_the_checker_finds_imports_in_functions_too() -> None:
    source = "import os\nfrom cli.helm import template\n\ndef f():\n    from commands import ROOT\n    import model.values\n"
    assert project_imports(source) == [(2, "cli"), (5, "commands"), (6, "model")]


def test_every_package_imports_only_what_lies_below_it() -> None:
    offenders = []
    for package, allowed in MAY_IMPORT.items():
        files = sorted((ROOT / package).rglob("*.py"))
        assert files, f"{package}/ holds no module"
        for path in files:
            for line, imported in project_imports(path.read_text()):
                if imported != package and imported not in allowed:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: imports {imported}")
    assert offenders == [], "an import runs back up the layers (ARCHITECTURE.md):\n" + "\n".join(offenders)


def test_no_library_imports_a_command_and_commands_import_only_their_package() -> None:
    commands = sorted((ROOT / "commands").glob("*.py"))
    across = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in commands for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("commands.")]
    assert across == [], "a command imports another command; move what they share to a library package:\n" + "\n".join(across)
    bench = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / "bench").glob("*.py"))
             for line, imported in project_imports(path.read_text()) if imported == "commands"]
    assert bench == [], "the bench runs commands as the user does, never imports them:\n" + "\n".join(bench)
