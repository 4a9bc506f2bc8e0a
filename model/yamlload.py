"""Reading the program's YAML data files, with libyaml's parser when PyYAML has it.

Catalog, base values, chart metadata and the chart lock are read on every run
of the program. libyaml's safe loader gives the same data as PyYAML's
pure-Python one (same tags and types, `yaml.YAMLError` on bad input) in about
a fifth of the time: 54 ms -> 16 ms to resolve a catalog of 100 releases
(bench/README.md). PyYAML's wheels ship libyaml; without it this falls back to
the pure-Python loader.
"""

from __future__ import annotations

from typing import Any

import yaml

# CSafeLoader is a safe loader too (libyaml parser, SafeConstructor), not a SafeLoader subclass.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, through libyaml when available."""
    return yaml.load(text, Loader=_LOADER)
