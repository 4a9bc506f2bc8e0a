"""The pack's rules as plain functions of a Helm Release's inputs and the project's files.

A policy sees what the engine hands it: the Release's inputs (chart, values,
repositoryOpts) and its URN, not rendered manifests. What a rule needs beyond
that it reads from the project being previewed (the engine's working
directory): the stack file (is it prod, which chartsDir), the catalog (which
values paths the program fills from encrypted config) and our own charts'
values.yaml defaults. Every check returns its findings as text naming the
values path; policy/policies.py turns them into violations. No secret value
ever appears in a finding: only paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from model.catalog import load_catalog
from model.stackfile import plain_config, with_inherited
from model.values import deep_merge

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
OWN_CHARTS = Path("charts") / "own"
PROD = "prod"
# A tag that names no fixed build: `latest`, or a dev build ({component}-dev-{sha}).
DEV_TAG = re.compile(r"-dev-")
# Keys whose values are credentials: *password*, *passwd*, *token*, *secret*.
SECRET_KEY = re.compile(r"pass(word|wd)|token|secret", re.IGNORECASE)
# Keys that name where a credential lives, not the credential: existingSecret,
# tlsSecretName, passwordSecretKey (the key inside a Secret), adminPasswordKey,
# *SecretRef, *SecretKeyRef. A bare `secretKey` (an S3/MinIO credential) is not one.
REFERENCE_KEY = re.compile(r"^existing|[Ss]ecretName$|[Ss]ecretRef$|[Ss]ecretKeyRef$|[a-z](Password|Token|Secret)Key$")


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
    stack_file = root / f"Pulumi.{stack}.yaml"
    config: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    if stack_file.is_file():
        config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
        raw = plain_config(stack_file)
    parent = config.get(f"{project}:inherits")
    parent = parent if isinstance(parent, str) and parent else None
    # Secrets and `inherits` itself are not inherited, so one level is the whole chain.
    raw = with_inherited(root, raw, parent)
    charts_dir = raw.get("chartsDir") or "charts"
    catalog = load_catalog(root / "catalog" / "releases.yaml")
    return StackFacts(
        root=root, project=project, stack=stack,
        environment=PROD if PROD in (stack, parent) else stack,
        charts_dir=str(charts_dir),
        secret_paths={r.name: frozenset(r.secrets) for r in catalog.releases},
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

    Allowed: a folder charts/own/<name>, an archive <chartsDir>/external/<file>.tgz (a chart
    synced into the lock and verified by the program), or that archive staged by content as
    .state/charts/<sha256>.tgz with a sha256 the lock records. Refused: a repository URL or oci:// ref,
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


def _disabled(values: Mapping[str, Any], path: str) -> bool:
    """True when the map at path ("" for the top), or one above it, says `enabled: false`.

    Our charts render a component only when it is enabled (charts/own/astrago/templates).
    Paths through lists are not followed: no values of ours switch list items off.
    """
    node: Any = values
    if node.get("enabled") is False:
        return True
    for part in path.split(".") if path else []:
        node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and node.get("enabled") is False:
            return True
    return False


def effective_values(values: Mapping[str, Any], chart: str, root: Path) -> tuple[dict[str, Any], bool]:
    """(values Helm would use as far as a policy can know, whether chart defaults are included).

    For our own charts the chart's values.yaml is laid under the Release's values, as Helm does,
    so a default the stack forgot to override (a dev tag, missing limits) is seen. A third-party
    archive's defaults are its own and are not read.
    """
    folder = own_chart(chart, root)
    if folder is None or not (folder / "values.yaml").is_file():
        return plain(values), False
    defaults = yaml.safe_load((folder / "values.yaml").read_text()) or {}
    return deep_merge(defaults, plain(values)), True


def _tag_of(reference: str) -> str | None:
    """The tag of an image reference `registry/repo:tag[@digest]`; None when it has none."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_tags(values: Mapping[str, Any]) -> Iterator[tuple[str, str | None, bool]]:
    """(values path, tag, pinned by digest) of every image the values name, skipping disabled parts.

    Images are found by the shapes charts use: a map under a key ending in `image` (its `tag`),
    any map with both `repository` and `tag`, a string under a key ending in `image` (a full
    reference), and a string under a key ending in `imageTag`.
    """
    for path, key, value, _parent in _walk(values):
        if _disabled(values, path.rsplit(".", 1)[0] if "." in path else ""):
            continue
        lowered = key.lower()
        if isinstance(value, Mapping) and (lowered.endswith("image") or {"repository", "tag"} <= set(value)):
            if value.get("tag") not in (None, ""):
                yield f"{path}.tag", str(value["tag"]), bool(value.get("digest"))
        elif isinstance(value, str) and value and lowered.endswith("image"):
            yield path, _tag_of(value), "@" in value
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and lowered.endswith("imagetag") and value != "":
            yield path, str(value), False


def image_tag_problems(values: Mapping[str, Any]) -> list[str]:
    """Rule `prod-image-tags`: every image names a fixed build: no `latest`, no `-dev-` tag.

    A full reference without tag or digest pulls latest too. An image map without a tag takes the
    chart's default (a third-party chart's appVersion), which the lock pins.
    """
    problems = []
    for path, tag, digest in image_tags(values):
        if tag is None and not digest:
            problems.append(f"{path} has no tag, so it pulls `latest`; pin a release tag")
        elif tag is not None and tag.lower() == "latest":
            problems.append(f"{path} is `latest`; pin a release tag")
        elif tag is not None and DEV_TAG.search(tag):
            problems.append(f"{path} is dev build {tag!r}; prod runs release builds")
    return problems


def limits_problems(values: Mapping[str, Any]) -> list[str]:
    """Rule `prod-resource-limits`, for our own charts: every enabled workload has cpu and memory limits.

    Our charts give each workload a map with `image` and `resources`, and template
    `resources` into that container verbatim (charts/own/*/templates), so the values decide
    the limits exactly; values is the chart's defaults with the Release's values laid over.
    """
    problems = []
    candidates = [("", values)] + [(p, v) for p, _k, v, _ in _walk(values) if isinstance(v, Mapping)]
    for path, node in candidates:
        if "image" not in node or _disabled(values, path):
            continue
        resources = node.get("resources")
        limits = resources.get("limits") if isinstance(resources, Mapping) else None
        where = path or "the chart's workload (top level)"
        missing = [r for r in ("cpu", "memory") if not (isinstance(limits, Mapping) and limits.get(r) not in (None, ""))]
        if missing:
            prefix = f"{path}." if path else ""
            problems.append(f"{where} has no {' or '.join(missing)} limit; set {prefix}resources.limits.{missing[0]}")
    return problems


def is_reference_key(key: str) -> bool:
    """True for keys that name where a credential is kept (existingSecret, tlsSecretName, ...)."""
    return bool(REFERENCE_KEY.search(key))


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
