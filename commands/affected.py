"""Which deployable stacks a change touches: changed paths in, stack names out.

CI runs one preview job per stack this prints (a JSON list, e.g.
``["dev", "prod", "site-a"]``)::

    python -m commands.affected --base origin/main [--head HEAD] [--explain]
    python -m commands.affected Pulumi.prod.yaml values/astrago.yaml
    python -m commands.affected --all

Each changed path is judged by the first rule that matches it:

1. ``Pulumi.<stack>.yaml``: that stack and every stack inheriting from it
   (``astrago-deploy:inherits``); a removed stack file touches nothing.
2. ``charts/``: every stack (a chart is packaged whole, its README too).
3. Documentation (``*.md``, ``docs/``, ``LICENSE``): no stack.
4. What the program reads or runs with (``catalog/``, ``values/``, ``schemas/``,
   ``components/``, ``model/``, ``__main__.py``, ``Pulumi.yaml``,
   ``requirements*.txt``, ``constraints.txt``; and the engine, provider and
   commands CI deploys with: ``toolchain/``, ``commands/``, ``Makefile``,
   ``.github/workflows/``): every stack.
5. Tests, the local cluster and tool settings (``tests/``, ``cluster/``,
   ``.ci/``, ``pyproject.toml``, ``.gitignore``): no stack.
6. Anything else: every stack, since nothing says it leaves deployments alone.

The ``local`` quickstart stack is never listed: CI does not deploy it, and
``make test`` covers it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cli.git import git
from commands import ROOT
from model.errors import InputError, entry_point
from model.stackfile import STACK_FILE_GLOB, StackFile, chain, parse_stack_file

# Stacks CI never previews or deploys.
NOT_DEPLOYED = frozenset({"local"})
# The environments first, in promotion order; customer stacks after them by name.
ENVIRONMENTS = ("dev", "stage", "prod")
STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[^/]+)\.yaml$")
# Pulumi's own rule for stack names; it also keeps a file name from smuggling
# shell syntax into the CI jobs that receive the name.
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Folders (trailing slash) and file patterns at the top of the repository.
CHARTS = ("charts/",)
DOCS = ("*.md", "docs/", "LICENSE*")
EVERY_STACK = (
    "catalog/", "values/", "schemas/", "components/", "model/", "__main__.py", "Pulumi.yaml",
    "requirements*.txt", "constraints.txt",
    "toolchain/", "commands/", "Makefile", ".github/workflows/",
)
NO_STACK = ("tests/", "cluster/", ".ci/", "pyproject.toml", ".gitignore")


@dataclass(frozen=True)
class Impact:
    """What one changed path does to the stacks, and why."""

    path: str
    stacks: frozenset[str]
    reason: str


def _matches(path: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/"):
            if path.startswith(pattern):
                return True
        elif fnmatch.fnmatchcase(path, pattern):
            return True
    return False


def read_stacks(root: Path = ROOT) -> dict[str, str | None]:
    """Every stack with a file in `root`, mapped to the stack it inherits from (or None).

    Raises InputError naming the file (and line) when a stack file is not
    YAML or breaks the stack schema, names a stack Pulumi would refuse, or
    inherits along a chain that is circular or reaches a stack without a
    file: the rule the program applies (model.stackfile.chain).
    """
    files: dict[str, StackFile] = {}
    problems: list[str] = []
    for path in sorted(root.glob(STACK_FILE_GLOB)):
        match = STACK_FILE.match(path.name)
        if not match:
            continue
        name = match["stack"]
        if not STACK_NAME.match(name):
            problems.append(f"{path.name}: {name!r} is not a valid stack name (letters, digits, '.', '_', '-'); rename the file")
            continue
        try:
            files[name] = parse_stack_file(path.read_text(), name)
        except InputError as error:
            problems.extend(error.problems)
    for name, file in files.items():
        try:
            chain(name, files.get, first=file)
        except InputError as error:
            problems.extend(p for p in error.problems if p not in problems)
    if problems:
        raise InputError(*problems)
    return {name: file.parent for name, file in files.items()}


def with_inheritors(stack: str, stacks: dict[str, str | None]) -> set[str]:
    """`stack` and every stack that inherits from it, directly or through another."""
    found = {stack}
    grew = True
    while grew:  # bounded: each pass adds a stack or ends
        more = {name for name, parent in stacks.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def impact(path: str, stacks: dict[str, str | None]) -> Impact:
    """The stacks one changed path touches (deployable ones only), by the first matching rule."""
    deployable = frozenset(stacks) - NOT_DEPLOYED
    match = STACK_FILE.match(path)
    if match:
        name = match["stack"]
        if name not in stacks:
            return Impact(path, frozenset(), "stack file removed")
        touched = frozenset(with_inheritors(name, stacks)) & deployable
        inherited = sorted(touched - {name})
        why = f"stack file of {name}" + (f", inherited by {', '.join(inherited)}" if inherited else "")
        if name in NOT_DEPLOYED:
            why += f" (CI does not deploy {name})"
        return Impact(path, touched, why)
    if _matches(path, CHARTS):
        return Impact(path, deployable, "part of a chart")
    if _matches(path, DOCS):
        return Impact(path, frozenset(), "documentation")
    if _matches(path, EVERY_STACK):
        return Impact(path, deployable, "read by the program or its deployment tooling")
    if _matches(path, NO_STACK):
        return Impact(path, frozenset(), "tests or tool settings")
    return Impact(path, deployable, "not known to leave deployments alone")


def ordered(stacks: Iterable[str]) -> list[str]:
    """dev, stage, prod first (promotion order), then the other stacks by name."""
    return sorted(stacks, key=lambda s: (ENVIRONMENTS.index(s) if s in ENVIRONMENTS else len(ENVIRONMENTS), s))


def affected(paths: Iterable[str], root: Path = ROOT) -> tuple[list[str], list[Impact]]:
    """The stacks the changed paths touch, in order, and the judgement of each path."""
    stacks = read_stacks(root)
    impacts = [impact(p, stacks) for p in paths if p]
    return ordered(set().union(*(i.stacks for i in impacts))), impacts


def changed_paths(base: str, head: str, root: Path = ROOT) -> list[str]:
    """Paths that differ between the merge base of `base` and `head`, and `head` (both sides of a rename)."""
    result = git(root, "diff", "--name-only", "--no-renames", "-z", f"{base}...{head}", check=False)
    if result.returncode != 0:
        raise InputError(f"git diff {base}...{head} failed: {result.stderr.strip()}; fetch both commits (actions/checkout with fetch-depth: 0)")
    return [p for p in result.stdout.split("\0") if p]


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    """The command: JSON list of stacks on stdout; exit 2 on bad input, naming the file and the fix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="changed paths, relative to the repository root")
    parser.add_argument("--base", help="compare HEAD (or --head) with its merge base with this revision")
    parser.add_argument("--head", default="HEAD", help="the revision under review (default: HEAD)")
    parser.add_argument("--all", action="store_true", help="every deployable stack, whatever changed")
    parser.add_argument("--explain", action="store_true", help="print each path's judgement on stderr")
    args = parser.parse_args(argv)
    if not (args.paths or args.base or args.all):
        parser.error("give changed paths, --base REV, or --all")
    try:
        if args.all:
            stacks = ordered(set(read_stacks(root)) - NOT_DEPLOYED)
            impacts: list[Impact] = []
        else:
            paths = list(args.paths) + (changed_paths(args.base, args.head, root) if args.base else [])
            stacks, impacts = affected(paths, root)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.explain:
        for item in impacts:
            print(f"{item.path}: {', '.join(ordered(item.stacks)) or 'no stack'} ({item.reason})", file=sys.stderr)
    print(json.dumps(stacks))
    return 0


if __name__ == "__main__":
    entry_point(main, "affected")
