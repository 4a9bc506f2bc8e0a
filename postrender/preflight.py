"""The post-render's checks at preview: Helm runs the post-renderer only on install and upgrade.

For every release with a post-render, the chart is rendered by `helm template`
(values with secrets masked) and put through the same steps Helm will run
(`postrender.stream.post_render`): a kustomization kustomize refuses, a patch
whose target matches nothing, an image the images lock does not hold or holds
without a digest, all fail the preview, each naming the release and the
patch or image, before anything is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from cli.helm import template
from cli.process import ToolError
from model.deployment import Deployment, ResolvedRelease
from model.errors import InputError
from postrender.stream import post_render

WORKERS = 2
TIMEOUT_S = 120.0

Render = Callable[[ResolvedRelease, str], str]
"""(release, values as YAML) -> the chart's rendered manifests, without post-render."""


def helm_render(root: Path, timeout_s: float = TIMEOUT_S) -> Render:
    def render(release: ResolvedRelease, values: str) -> str:
        return template(release.name, release.chart_path, release.namespace, values, timeout_s, cwd=root)
    return render


def check_postrenders(root: Path, deployment: Deployment, render: Render | None = None, workers: int = WORKERS) -> None:
    """Raise InputError listing every problem the post-renders of the stack's releases would hit."""
    render = render or helm_render(root)
    todo = {name: release for name, release in deployment.releases.items() if release.postrender is not None}

    def check(name: str) -> list[str]:
        release = todo[name]
        spec = release.postrender
        assert spec is not None
        try:
            rendered = render(release, yaml.safe_dump(deployment.masked_values(name)))
            post_render(rendered, root, spec.patches, spec.registry, spec.lock, name)
        except InputError as error:
            return [f"release {name!r}: {p}" for p in error.problems]
        except ToolError as error:
            return [f"release {name!r}: {error}"]
        return []

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="postrender-check") as pool:
        problems = [p for found in pool.map(check, list(todo)) for p in found]
    if problems:
        raise InputError(*problems)
