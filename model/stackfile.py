"""Stack files as data: the one reader of `Pulumi.<stack>.yaml`, including `inherits`.

Every reader of a stack file goes through here: the program (`__main__.py`,
for the stacks its stack inherits), the make targets' pre-flight
(`commands/stackcheck.py`), CI's stack selection (`commands/affected.py`),
and the tools (values, targets, images, bundle, audit, policy).

The `inherits` rule: a stack may name the stack it starts from, and that one
may inherit in turn (site-b -> site-a -> prod). The plain settings
(INHERITED_KEYS) are laid from the farthest ancestor down, each stack's own
values winning; secrets, `adopt` and `inherits` itself are not inherited. A
chain that comes back to a stack, or names a stack without a file, is refused.

Each file is checked against schemas/stack.schema.json when it is read;
errors name the file and line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model import schemas
from model.catalog import Catalog
from model.errors import InputError
from model.settings import StackSettings, parse_settings
from model.values import deep_merge
from model.yamlload import Document, KeyPath, parse

PROJECT = "astrago-deploy"
# Keys a stack inherits from the stack it names in `inherits`.
INHERITED_KEYS = ("cluster", "offline", "releases", "externals", "chartsDir")
INHERITS = "inherits"
STACK_FILE_GLOB = "Pulumi.*.yaml"
# Loads a stack's file by stack name; None when the stack has no file.
Loader = Callable[[str], "StackFile | None"]


@dataclass(frozen=True)
class StackFile:
    """One stack file, parsed and checked against the stack schema."""

    stack: str
    document: Document

    @property
    def config(self) -> dict[str, Any]:
        data = self.document.data
        config = data.get("config") if isinstance(data, dict) else None
        return config if isinstance(config, dict) else {}

    @property
    def parent(self) -> str | None:
        """The stack this one inherits from, or None."""
        value = self.config.get(f"{PROJECT}:{INHERITS}")
        return value if isinstance(value, str) and value else None

    def plain(self) -> dict[str, Any]:
        """This file's own plain settings that a stack inheriting it takes, by short key."""
        result: dict[str, Any] = {}
        for short in INHERITED_KEYS:
            value = self.config.get(f"{PROJECT}:{short}")
            if value is not None:
                result[short] = value
        return result

    def line(self, path: KeyPath) -> int | None:
        """Line of a short key path (`("releases", "astrago", "values")`) in this file, if it holds it."""
        full: KeyPath = ("config", f"{PROJECT}:{path[0]}", *path[1:]) if path else ()
        return self.document.lines.get(full)


def file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def known_stacks(root: Path) -> list[str]:
    """Stacks with a file in root, sorted."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob(STACK_FILE_GLOB))


def unknown_stack(root: Path, stack: str, what: str = "") -> InputError:
    """The refusal for a stack without a stack file: the known stacks and the closest name."""
    known = known_stacks(root)
    close = difflib.get_close_matches(stack, known, n=1, cutoff=0.5)
    return InputError(
        f"{what or 'stack'} {stack!r} has no stack file {file_name(stack)} in {root}; nothing was created or changed. "
        + (f"Did you mean {close[0]!r}? " if close else "")
        + f"Known stacks: {', '.join(known) or 'none'}. A new stack starts as a file: write {file_name(stack)} "
        f"(e.g. `astrago-deploy:inherits: prod`), then `make stack STACK={stack}`."
    )


def parse_stack_file(text: str, stack: str, source: str | None = None) -> StackFile:
    """A stack file from its text; InputError naming file and line for bad YAML or a schema violation."""
    document = parse(text, source or file_name(stack))
    if document.data is None:
        document = Document(source=document.source, data={}, node=document.node)
    schemas.check("stack", document, hide=1)
    return StackFile(stack=stack, document=document)


def file_loader(root: Path) -> Loader:
    """Load stack files from a folder (None for a stack without a file)."""
    def load(stack: str) -> StackFile | None:
        path = root / file_name(stack)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: cannot be read ({error})") from None
        return parse_stack_file(text, stack, str(path))
    return load


def read_stack_file(root: Path, stack: str) -> StackFile:
    """The stack's own file; InputError naming the known stacks when it has none."""
    found = file_loader(root)(stack)
    if found is None:
        raise unknown_stack(root, stack)
    return found


def chain(stack: str, load: Loader, first: StackFile | None = None, child: StackFile | str | None = None) -> list[StackFile]:
    """The stack's file and those of every stack it inherits from, nearest first.

    first: the stack's own file when already loaded; child: the stack that
    inherits from `stack` when its config was read elsewhere (through Pulumi).
    Refuses a chain that comes back to a stack it passed, and a parent without a file.
    """
    files: list[StackFile] = []
    seen: list[str] = [child if isinstance(child, str) else child.stack] if child else []
    current: StackFile | None = first
    name: str | None = stack
    while name is not None:  # bounded: each step adds a new name to `seen`, or stops
        by = files[-1].document.source if files else (child.document.source if isinstance(child, StackFile) else file_name(seen[-1]) if seen else "")
        if name in seen:
            raise InputError(f"{by}: astrago-deploy:inherits goes round in a circle ({' -> '.join([*seen, name])}); "
                             f"make one of these stacks stop inheriting")
        if current is None:
            current = load(name)
            if current is None:
                raise InputError(f"{by}: astrago-deploy:inherits names {name!r}, which has no {file_name(name)}; "
                                 f"name an existing stack (dev, stage, prod or a site)")
        seen.append(name)
        files.append(current)
        name, current = current.parent, None
    return files


def stack_chain(root: Path, stack: str) -> list[StackFile]:
    """`chain` of a stack whose files are in root; InputError naming the known stacks when it has none."""
    return chain(stack, file_loader(root), read_stack_file(root, stack))


def lay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Settings `over` laid on `base`: maps merge (over wins), anything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if value is None:
            continue
        merged[key] = deep_merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def inherited(files: list[StackFile]) -> dict[str, Any]:
    """The plain settings of a chain (nearest first), laid from the farthest ancestor down."""
    merged: dict[str, Any] = {}
    for file in reversed(files):
        merged = lay(merged, file.plain())
    return merged


def with_inherited(root: Path, raw: dict[str, Any], parent: str | None, stack: str = "") -> dict[str, Any]:
    """Lay a stack's own config (raw, e.g. read through Pulumi) over the chain of the stack it inherits from."""
    if not parent:
        return raw
    files = chain(parent, file_loader(root), child=stack or None)
    return lay(inherited(files), raw)


def locator(files: list[StackFile]) -> Callable[[KeyPath], str]:
    """For a short key path of merged settings: `<file> line <n>` of the nearest stack file that sets it."""
    def where(path: KeyPath) -> str:
        for end in range(len(path), 0, -1):
            for file in files:
                line = file.line(path[:end])
                if line:
                    return f"{file.document.source} line {line}"
        return files[0].document.source if files else ""
    return where


def stack_settings(root: Path, stack: str, catalog: Catalog, charts_dir: str | None = None) -> StackSettings:
    """A stack's settings read from its file (and the files it inherits), as the program sees them.

    For tools that work without the engine (values, targets, diffs); the
    program itself reads its own stack's config through Pulumi in __main__.py.
    """
    files = stack_chain(root, stack)
    raw = lay(inherited(files[1:]), files[0].plain())
    raw["adopt"] = files[0].config.get(f"{PROJECT}:adopt")
    if charts_dir:
        raw["chartsDir"] = charts_dir
    return parse_settings(stack, raw, catalog, locator(files))


def plain_config(path: Path) -> dict[str, Any]:
    """The plain settings of one stack file (not its parents'), by short key."""
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if not path.is_file():
        raise unknown_stack(path.parent, stack)
    return parse_stack_file(path.read_text(), stack, str(path)).plain()
