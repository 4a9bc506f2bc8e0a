"""The one error type for bad input (config, catalog, charts)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input found before anything is applied.

    The message names the file, key or release at fault and says how to fix
    it; several problems found in one pass are reported together.
    """

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        super().__init__(problems[0] if len(problems) == 1 else "\n".join(f"- {p}" for p in problems))
