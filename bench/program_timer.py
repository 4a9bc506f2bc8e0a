"""Bench-only entry point: runs the real program and records how long the program itself took.

`bench.run` copies this file into a project copy as ``__main__.py`` and the
real ``__main__.py`` beside it as ``astrago_program.py``. The engine then runs
it as it runs the program. When ``ASTRAGO_BENCH_PROGRAM_LOG`` names a file,
one JSON line per run is appended to it at process exit:

- ``startup_s``: process start (kernel start time) to this file's first line:
  the interpreter, the Pulumi SDK and the language host's exec shim;
- ``imports_s``: this file's start to the moment the program calls
  ``load_catalog``: the program's own imports (components, pulumi_kubernetes);
- ``prepare_s``: ``load_catalog`` plus ``prepare()`` and the config reads in
  between (everything ``__main__.py`` does before the first resource);
- ``components_s``: from the end of ``prepare()`` to the end of the program
  body: the Platform, Tier and LocalRelease constructors (registrations are
  sent asynchronously);
- ``body_s``: the program body (``runpy``) from this file's start;
- ``process_wall_s``: process start to exit, which includes waiting for the
  engine to answer every registration;
- ``cpu_s``: user + system CPU time of the whole process (all threads) at exit:
  what the program costs, its waits on the engine excluded.

- ``rendered``, ``cached``: releases the program's Helm render returned and
  how many of them came from the render cache (render/releases.py).

With ``ASTRAGO_BENCH_NO_RENDER=1`` the program runs with its render switched
off (``render_for_program`` returns no line and renders nothing): the
baseline the bench measures the render's cost against, never a real run.

With ``ASTRAGO_BENCH_PROFILE`` naming a file, the program body and its
asynchronous registrations also run under cProfile, dumped there at exit.
"""

from __future__ import annotations

import time

_START = time.monotonic()

import atexit  # noqa: E402  (after the first timestamp on purpose)
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import runpy  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

_marks: dict[str, float] = {}
_render = {"rendered": 0, "cached": 0}


def _process_age() -> float:
    """Seconds since the kernel started this process, from /proc/uptime (10 ms resolution).

    Not time.time() minus /proc/stat's btime: btime is whole seconds, which would
    shift every startup figure by up to a second.
    """
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


# Measured to this file's first line (_START), not to this point after the imports.
_STARTUP = max(0.0, _process_age() - (time.monotonic() - _START))


def _write(log: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    end = time.monotonic()
    record: dict[str, Any] = {
        "startup_s": _STARTUP,
        "imports_s": _marks.get("catalog", end) - _START,
        "prepare_s": _marks.get("prepared", end) - _marks.get("catalog", end),
        "components_s": _marks.get("body", end) - _marks.get("prepared", end),
        "body_s": _marks.get("body", end) - _START,
        "process_wall_s": _STARTUP + (end - _START),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        **_render,
    }
    with open(log, "a") as out:
        out.write(json.dumps(record) + "\n")


def _instrument() -> None:
    """Time load_catalog and prepare as the program calls them (it imports them by name later).

    The SDK floor's program (`bench.run.bench_floor`) has no `model` package: its
    imports_s and prepare_s are then zero and components_s is its whole body.
    """
    if importlib.util.find_spec("model") is None:
        _marks["catalog"] = _marks["prepared"] = _START
        return
    from model import catalog, deployment

    load, prepare = catalog.load_catalog, deployment.prepare

    def timed_load(*args: Any, **kwargs: Any) -> Any:
        _marks.setdefault("catalog", time.monotonic())
        return load(*args, **kwargs)

    def timed_prepare(*args: Any, **kwargs: Any) -> Any:
        result = prepare(*args, **kwargs)
        _marks["prepared"] = time.monotonic()
        return result

    catalog.load_catalog = timed_load  # type: ignore[assignment]
    deployment.prepare = timed_prepare  # type: ignore[assignment]

    from render import releases as render

    if os.environ.get("ASTRAGO_BENCH_NO_RENDER") == "1":
        render.render_for_program = lambda *args, **kwargs: []  # type: ignore[assignment]
        return
    render_releases = render.render_releases

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = render_releases(*args, **kwargs)
        _render["rendered"] += len(result)
        _render["cached"] += sum(1 for r in result.values() if r.cached)
        return result

    render.render_releases = counted  # type: ignore[assignment]


def _main() -> None:
    program = Path(__file__).resolve().parent / "astrago_program.py"
    log = os.environ.get("ASTRAGO_BENCH_PROGRAM_LOG")
    profile_to = os.environ.get("ASTRAGO_BENCH_PROFILE")
    if log:
        atexit.register(_write, log)
    _instrument()
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        atexit.register(profiler.dump_stats, profile_to)
        atexit.register(profiler.disable)
        profiler.enable()
    runpy.run_path(str(program), run_name="__main__")
    _marks["body"] = time.monotonic()


_main()
