"""Reading the program's YAML data files, with libyaml's parser when PyYAML has it.

Catalog, base values, chart metadata and the chart lock are read on every run
of the program. libyaml's safe loader gives the same data as PyYAML's
pure-Python one (same tags and types, `yaml.YAMLError` on bad input) in about
a fifth of the time: 54 ms -> 16 ms to resolve a catalog of 100 releases
(bench/README.md). PyYAML's wheels ship libyaml; without it this falls back to
the pure-Python loader.

`load_file` is the one reader of a data file a person edits: it names the file
and the line of a syntax error, and keeps the line of every key so a later
check (schemas, settings) can point at it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from model.errors import InputError

# CSafeLoader is a safe loader too (libyaml parser, SafeConstructor), not a SafeLoader subclass.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KeyPath = tuple[str | int, ...]


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, through libyaml when available."""
    return yaml.load(text, Loader=_LOADER)


@dataclass(frozen=True)
class Document:  # frozen, yet `lines` is cached: cached_property writes the instance __dict__ directly
    """A YAML file's data and the line (1-based) where each key path starts."""

    source: str
    """The file as messages name it (a path, or `<commit>:<path>`)."""
    data: Any
    node: yaml.Node | None = field(default=None, repr=False, compare=False)
    """The parsed node tree: lines are read from it only when a message needs one."""
    locate: Callable[[KeyPath], str] | None = None
    """For data assembled from several files: `<file> line <n>` of a key path (replaces source + lines)."""

    @cached_property
    def lines(self) -> dict[KeyPath, int]:
        """Line (1-based) of every key path the file holds."""
        found: dict[KeyPath, int] = {}
        if self.node is not None:
            _walk(self.node, (), found)
        return found

    def line(self, path: KeyPath) -> int | None:
        """Line of the deepest prefix of `path` the file holds (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def where(self, path: KeyPath = ()) -> str:
        """`<file> line <n>` for messages (just the file when the line is unknown)."""
        if self.locate is not None:
            return self.locate(path)
        line = self.line(path)
        return f"{self.source} line {line}" if line else self.source


def syntax_error(source: str, error: yaml.YAMLError, hint: str = "", text: str = "") -> InputError:
    """A YAML syntax error as one message naming the file and the line.

    The parser notices an unclosed bracket only at the next line it cannot
    read (or where the text ends); the line that opened the bracket (the
    context) is then the one to fix.
    """
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    context_mark = getattr(error, "context_mark", None)
    opened = str(getattr(error, "context", "") or "").startswith("while parsing a flow")
    if mark is not None and context_mark is not None and (opened or not text[mark.index:].strip()):
        mark = context_mark
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    where = f"{source} line {mark.line + 1}" if mark is not None else source
    detail = f"{problem} ({context} on line {error.context_mark.line + 1})" if context and getattr(error, "context_mark", None) else problem  # type: ignore[attr-defined]
    return InputError(f"{where}: not valid YAML: {detail}" + (f"; {hint}" if hint else ""))


def parse(text: str, source: str, hint: str = "") -> Document:
    """Parse YAML text keeping key lines; InputError naming source and line on a syntax error."""
    try:
        loader = _LOADER(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise syntax_error(source, error, hint, text) from None
    return Document(source=source, data=data, node=node)


def load_file(path: Path, hint: str = "", source: str | None = None) -> Document:
    """Read and parse a file; InputError when it is missing, unreadable or not YAML."""
    name = source or str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file" + (f"; {hint}" if hint else "")) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{name}: cannot be read ({error})") from None
    return parse(text, name, hint)


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*path, key.value)] = key.start_mark.line + 1
                _walk(value, (*path, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)
