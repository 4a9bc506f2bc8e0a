"""The one error type for bad input, and how every entry point reports errors.

Every command (commands/*, cluster/cluster.py) runs its `main` through
`entry_point`, and the Pulumi program turns exceptions into messages with
`describe`: a user error or a runtime failure ends with one message and a
non-zero exit, never a traceback; `--debug` or `ASTRAGO_DEBUG=1` shows it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

DEBUG_ENV = "ASTRAGO_DEBUG"
DEBUG_FLAG = "--debug"
# Exit codes: 2 bad input (as argparse), 1 a runtime failure, 130 interrupted (as a shell).
EXIT_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


class InputError(ValueError):
    """Bad input found before anything is applied.

    The message names the file, key or release at fault and says how to fix
    it; several problems found in one pass are reported together.
    """

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        super().__init__(problems[0] if len(problems) == 1 else "\n".join(f"- {p}" for p in problems))


def debugging(environ: Mapping[str, str] = os.environ, argv: Sequence[str] = ()) -> bool:
    """Whether the user asked for tracebacks (`--debug` or ASTRAGO_DEBUG=1)."""
    return DEBUG_FLAG in argv or environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def describe(error: BaseException) -> tuple[str, int]:
    """The one-paragraph message and exit code for an exception that ends a command.

    InputError and the project's tool errors carry a message written for the
    user; other failures are named by type and message, with the switch that
    shows the traceback.
    """
    import subprocess  # deferred: every program run imports this module, few ever fail

    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C); a stopped update is repaired by `make recover STACK=<stack>`", EXIT_INTERRUPTED
    if isinstance(error, InputError):
        return str(error), EXIT_INPUT
    if type(error).__name__ == "ToolError":  # cli.process.ToolError: named here so model/ imports nothing from cli/
        return str(error), EXIT_FAILURE
    if isinstance(error, subprocess.TimeoutExpired):
        return f"`{_command(error.cmd)}` did not finish within {error.timeout:.0f} s", EXIT_FAILURE
    if isinstance(error, subprocess.CalledProcessError):
        return f"`{_command(error.cmd)}` failed (exit {error.returncode})", EXIT_FAILURE
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.filename}: no such file or program", EXIT_FAILURE
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else ""), EXIT_FAILURE
    return (f"unexpected {type(error).__name__}: {error}; this is a bug of astrago-deploy, "
            f"run again with {DEBUG_ENV}=1 for the traceback and report it"), EXIT_FAILURE


def entry_point(main: Callable[[list[str]], int], name: str, argv: list[str] | None = None) -> NoReturn:
    """Run a command's `main(argv)` and exit: its return code, or one message on stderr for an exception.

    `--debug` (removed from argv before `main` sees it) or ASTRAGO_DEBUG=1 prints the traceback too.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(os.environ, args)
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        code = main(args)
    except SystemExit:
        raise
    except BaseException as error:  # the last line of defence of every command
        if debug:
            import traceback

            traceback.print_exc()
        message, code = describe(error)
        print(f"{name}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _command(cmd: object) -> str:
    parts = [str(p) for p in cmd] if isinstance(cmd, (list, tuple)) else [str(cmd)]
    return " ".join([parts[0].rsplit("/", 1)[-1], *parts[1:4]]) + (" ..." if len(parts) > 4 else "")
