"""The pack's rules as plain functions of a Helm Release's inputs, its rendered objects and the project's files.

A policy sees what the engine hands it: the Release's inputs (chart, values,
repositoryOpts, postrender) and its URN. The image and limit rules read the
objects Helm renders from those inputs (policy/policies.py runs `helm
template`, post-renderer included), never the values: Helm alone coalesces
them. What a rule needs beyond that it reads from the project being previewed
(the engine's working directory): the stack file (is it prod, which
chartsDir) and the catalog (which values paths the program fills from
encrypted config, each release's chart). Every check returns its findings as
text naming the values path or the object and field; policy/policies.py turns
them into violations. No secret value ever appears in a finding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from model.catalog import load_catalog
from model.errors import InputError
from model.images import RuntimeImage, object_text, parse_reference, path_text, release_images
from model.stackfile import file_name, inherited, stack_chain
from model.values import SECRET_KEY, is_reference_key

OWN_CHARTS = Path("charts") / "own"
PROD = "prod"
# A tag that names no fixed build: `latest`, or a dev build ({component}-dev-{sha}).
DEV_TAG = re.compile(r"-dev-")


@dataclass(frozen=True)
class StackFacts:
    """What the rules know about the stack being previewed, read from the project's files."""

    root: Path
    """The Pulumi project being previewed (the engine's working directory)."""
    project: str
    stack: str
    environment: str
    """`prod` when the stack is named prod or its stack file says `inherits: prod`; else the stack name."""
    charts_dir: str
    """The stack's chartsDir (own, else inherited, else `charts`): where external/ archives live."""
    secret_paths: Mapping[str, frozenset[str]]
    """Release name -> values paths the program fills from encrypted config (catalog `secrets:`)."""
    charts: Mapping[str, str] = field(default_factory=dict)
    """Release name -> the catalog's chart name."""

    @property
    def is_prod(self) -> bool:
        return self.environment == PROD


def parse_urn(urn: str) -> tuple[str, str]:
    """(stack, project) of a URN `urn:pulumi:<stack>::<project>::<type>::<name>`.

    pulumi-policy hands a resource validation no stack name (its ConfigureStack keeps only the
    stack's tags), so the URN is where a policy learns it.
    """
    if not urn.startswith("urn:pulumi:") or urn.count("::") < 3:
        raise ValueError(f"not a resource URN: {urn!r}")
    stack, project, *_ = urn.removeprefix("urn:pulumi:").split("::")
    return stack, project


@lru_cache(maxsize=16)
def load_facts(root: Path, project: str, stack: str) -> StackFacts:
    """Read the stack's facts from the project at root; raise ValueError naming a file that is wrong.

    A stack without a stack file has no config: not prod unless named prod, chartsDir `charts`.
    """
    pulumi_yaml = root / "Pulumi.yaml"
    if not pulumi_yaml.is_file():
        raise ValueError(f"{pulumi_yaml} is missing: the policy pack must run from the project's folder (`pulumi preview` there)")
    name = (yaml.safe_load(pulumi_yaml.read_text()) or {}).get("name")
    if name != project:
        raise ValueError(f"{pulumi_yaml} names project {name!r}, but the resources belong to {project!r}")
    # The stack's file and those it inherits from, by model.stackfile's rule (the program's).
    try:
        files = stack_chain(root, stack) if (root / file_name(stack)).is_file() else []
    except InputError as error:
        raise ValueError(str(error)) from None
    ancestry = [f.stack for f in files] or [stack]
    charts_dir = inherited(files).get("chartsDir") or "charts"
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    return StackFacts(
        root=root, project=project, stack=stack,
        environment=PROD if PROD in ancestry else stack,
        charts_dir=str(charts_dir),
        secret_paths={r.name: frozenset(r.secrets) for r in catalog.releases},
        charts={r.name: r.chart.name for r in catalog.releases},
    )


def plain(value: Any) -> Any:
    """A deep copy as dicts and lists (the policy SDK hands read-only proxies)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def _resolved(path: Path) -> Path:
    # normpath, not resolve(): `..` must not escape, but a symlinked project stays where it is.
    return Path(os.path.normpath(path))


def own_chart(chart: str, root: Path) -> Path | None:
    """The folder of our own chart a Release installs (charts/own/<name>), or None."""
    if "://" in chart or chart.startswith("oci:"):
        return None
    path = _resolved(root / chart)
    return path if path.parent == _resolved(root / OWN_CHARTS) else None


def chart_source_problems(chart: Any, repository_opts: Any, facts: StackFacts) -> list[str]:
    """Rule `release-chart-from-repo`: a Release installs only what this repository holds.

    Allowed: a folder charts/own/<name>, or an archive <chartsDir>/external/<file>.tgz (a chart
    synced into the lock and verified by the program). Refused: a repository URL or oci:// ref,
    any other path, and repositoryOpts.repo (Helm would fetch the chart by name from it).
    """
    problems: list[str] = []
    if not isinstance(chart, str) or not chart:
        return ["has no `chart` path; it must be charts/own/<name> or an archive in <chartsDir>/external/"]
    if "://" in chart or chart.startswith("oci:"):
        problems.append(f"chart {chart!r} is fetched from a repository; sync it into the lock (make charts-sync) and use the archive")
    else:
        path = _resolved(facts.root / chart)
        external = _resolved(facts.root / facts.charts_dir / "external")
        if (own_chart(chart, facts.root) is None and not (path.parent == external and path.name.endswith(".tgz"))
                and not _staged_locked(chart, facts)):
            problems.append(
                f"chart {chart!r} is neither a folder under {OWN_CHARTS}/ nor an archive in {facts.charts_dir}/external/"
            )
    repo = repository_opts.get("repo") if isinstance(repository_opts, Mapping) else None
    if repo:
        problems.append(f"repositoryOpts.repo {repo!r} makes Helm fetch the chart from a repository")
    return problems


def _walk(values: Any, path: str = "") -> Iterator[tuple[str, str, Any, Mapping[str, Any] | None]]:
    """(path, key, value, parent map) of every entry, depth first; list items get [i]."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key), value, values
            yield from _walk(value, child)
    elif isinstance(values, list):
        for i, value in enumerate(values):
            yield from _walk(value, f"{path}[{i}]")


def image_tag_problems(objects: Sequence[Mapping[str, Any]], chart: str, declared: tuple[RuntimeImage, ...] = ()) -> list[str]:
    """Rule `prod-image-tags`: every image the rendered objects name is a fixed build: no `latest`, no tag, no `-dev-` tag.

    Images are found as `make images` finds them (model/images.py); one pinned by digest passes.
    A field whose tag the chart's software fills in counts with the declared image (catalog/runtime-images.yaml).
    """
    uses, problems = release_images(objects, chart, declared)
    seen = set()
    for use in uses:
        reference = parse_reference(use.reference)
        if reference is None or reference.digest or (use.where, use.reference) in seen:
            continue
        seen.add((use.where, use.reference))
        tag = reference.tag or ""
        if tag == "latest":
            problems.append(f"{use.where} is {use.reference}: `latest` (or no tag); pin a release tag")
        elif DEV_TAG.search(tag):
            problems.append(f"{use.where} is dev build {tag!r}; prod runs release builds")
    return problems


def limits_problems(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rule `prod-resource-limits`: every container and init container of every rendered pod spec has cpu and memory limits."""
    problems = []
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            continue
        for path, container in _containers(obj, ()):
            resources = container.get("resources")
            limits = resources.get("limits") if isinstance(resources, Mapping) else None
            missing = [r for r in ("cpu", "memory") if not (isinstance(limits, Mapping) and limits.get(r) not in (None, ""))]
            if missing:
                problems.append(f"{object_text(obj)} {path_text(path)} ({container.get('name')}) has no {' or '.join(missing)} limit; "
                                f"set its resources.limits.{missing[0]} in the release's values")
    return problems


def _containers(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, Mapping):
                        yield (*path, key, index), item
            else:
                yield from _containers(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _containers(item, (*path, index))


def plain_secret_problems(values: Mapping[str, Any], secret_paths: frozenset[str]) -> list[str]:
    """Rule `no-plain-secrets`: no credential-named key holds a value outside the encrypted paths.

    pulumi-policy 1.21.0 hands validations the inputs with secret markers removed, so a policy
    cannot ask whether a value is secret. The program's only source of secret values is the
    catalog's `secrets:` map (values path -> encrypted config key); anything else under a key
    named like *password*, *token*, *secret* that holds a non-empty string or number came from
    a values file or a stack's plain config. Reference keys (see is_reference_key) and booleans
    are not credentials.
    """
    problems = []
    for path, key, value, _parent in _walk(values):
        if not SECRET_KEY.search(key) or is_reference_key(key) or path in secret_paths:
            continue
        leaves = [value] if not isinstance(value, list) else value
        if any(isinstance(v, (str, int, float)) and not isinstance(v, bool) and v != "" for v in leaves):
            problems.append(
                f"{path} holds a credential in plain values; keep it in encrypted config "
                f"(`make secret`) and map it in catalog/releases.yaml `secrets:`"
            )
    return problems


def _staged_locked(chart: str, facts: StackFacts) -> bool:
    """chart is `.state/charts/<sha256>.tgz` of an archive the stack's lock records."""
    from model.charts import STAGE_DIR, load_lock

    path = Path(chart)
    if path.parent != STAGE_DIR or not path.name.endswith(".tgz"):
        return False
    try:
        lock = load_lock(facts.root / facts.charts_dir)
    except (OSError, ValueError):
        return False
    return path.name.removesuffix(".tgz") in {entry.sha256 for entry in lock.values()}
