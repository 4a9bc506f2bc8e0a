"""Whether the engine will find the provider plugins the program registers, before it tries to download them.

The engine looks in its plugin cache (`$PULUMI_HOME/plugins`, default
`~/.pulumi/plugins`) and on PATH; a plugin it finds in neither it tries to
download, which fails on an offline site with a message that does not say
what to do. `make setup` builds the plugins and registers them in the
project's cache (`.tools/pulumi-home`), which the make targets and
`source toolchain/env.sh` select.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path


def plugin_home(environ: Mapping[str, str]) -> Path:
    """The plugin cache the engine reads."""
    return Path(environ.get("PULUMI_HOME") or Path.home() / ".pulumi")


def missing_plugins(environ: Mapping[str, str], wanted: Sequence[tuple[str, str]]) -> list[str]:
    """Messages for each (name, version) resource plugin found neither in the cache nor on PATH."""
    home = plugin_home(environ)
    problems = []
    for name, version in wanted:
        cached = home / "plugins" / f"resource-{name}-v{version}" / f"pulumi-resource-{name}"
        on_path = shutil.which(f"pulumi-resource-{name}", path=environ.get("PATH", os.defpath))
        if not cached.exists() and on_path is None:
            problems.append(
                f"the resource plugin {name} {version} is not in the plugin cache {home / 'plugins'} nor on PATH: "
                f"run `make setup` (it builds and registers it in .tools/pulumi-home), then `source toolchain/env.sh` "
                f"to run plain `pulumi` with that cache (the make targets select it themselves)"
            )
    return problems
