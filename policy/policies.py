"""The pack's policies: pulumi-policy glue around the plain checks in policy.rules.

Each violation's message names the release, the resource (its URN) and the rule,
then the values path at fault; the engine prints it under the policy's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from cli.helm import show_chart, template
from cli.process import ToolError
from model.errors import InputError
from model.images import RuntimeImage, load_runtime_declarations, runtime_images
from model.manifest import parse_manifest
from policy import rules

CHARTS = "charts-from-this-repo"
TAGS = "prod-pinned-image-tags"
LIMITS = "prod-resource-limits"
SECRETS = "no-plain-secrets"
RENDER_TIMEOUT_S = 120.0
_RENDERED: dict[tuple[str, str], tuple[list[dict[str, Any]], tuple[RuntimeImage, ...]]] = {}


def _facts(args: ResourceValidationArgs) -> rules.StackFacts:
    # The engine starts the pack in its own working directory: the project being previewed.
    stack, project = rules.parse_urn(args.urn)
    return rules.load_facts(Path(os.getcwd()).resolve(), project, stack)


def _release_name(args: ResourceValidationArgs) -> str:
    name = args.props.get("name")
    return str(name) if name else args.name


def _report(report_violation: ReportViolation, args: ResourceValidationArgs, rule: str, problems: list[str]) -> None:
    for problem in problems:
        report_violation(f"release {_release_name(args)!r} ({args.urn}) breaks rule {rule}: {problem}", args.urn)


def check_chart_source(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 1, every stack: the chart is charts/own/<name> or <chartsDir>/external/<archive>.tgz."""
    if args.resource_type != rules.RELEASE_TYPE:
        return
    problems = rules.chart_source_problems(args.props.get("chart"), rules.plain(args.props.get("repositoryOpts")), _facts(args))
    _report(report_violation, args, CHARTS, problems)


def _rendered(args: ResourceValidationArgs, facts: rules.StackFacts) -> tuple[list[dict[str, Any]], tuple[RuntimeImage, ...]] | str:
    """(the objects the Release installs, its chart's declared runtime images), rendered once per preview; a str says why not.

    `helm template` of the Release's chart, values and post-renderer: what Helm installs, not a guess from values.
    """
    props = rules.plain(args.props)
    key = (args.urn, json.dumps(props, sort_keys=True, default=str))
    if key not in _RENDERED:
        postrender = props.get("postrender")
        chart = str(props.get("chart") or "")
        try:
            text = template(_release_name(args), chart, str(props.get("namespace") or "default"), yaml.safe_dump(props.get("values") or {}),
                            RENDER_TIMEOUT_S, cwd=facts.root, post_renderer=str(postrender) if postrender else None)
            declared = runtime_images(load_runtime_declarations(facts.root), facts.charts.get(_release_name(args), ""),
                                      show_chart(chart, RENDER_TIMEOUT_S, cwd=facts.root))
            _RENDERED.clear()  # one release at a time: the two prod rules share its rendering
            _RENDERED[key] = (list(parse_manifest(text).values()), declared)
        except (ToolError, InputError, ValueError) as error:
            return f"the release cannot be rendered, so its images and limits are unknown: {error}"
    return _RENDERED[key]


def check_prod_image_tags(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 2, prod only: no `latest`, untagged or `-dev-` image in what the release renders."""
    if args.resource_type != rules.RELEASE_TYPE:
        return
    facts = _facts(args)
    if not facts.is_prod:
        return
    rendered = _rendered(args, facts)
    if isinstance(rendered, str):
        _report(report_violation, args, TAGS, [rendered])
        return
    objects, declared = rendered
    _report(report_violation, args, TAGS, rules.image_tag_problems(objects, facts.charts.get(_release_name(args), ""), declared))


def check_prod_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 3, prod only: every container our own charts render has cpu and memory limits.

    A third-party archive is marked not applicable: its defaults are upstream's to choose.
    """
    if args.resource_type != rules.RELEASE_TYPE:
        return
    facts = _facts(args)
    if not facts.is_prod:
        return
    if rules.own_chart(str(args.props.get("chart") or ""), facts.root) is None:
        args.not_applicable("a third-party chart: its resource defaults are upstream's")
    rendered = _rendered(args, facts)
    if isinstance(rendered, str):
        _report(report_violation, args, LIMITS, [rendered])
        return
    _report(report_violation, args, LIMITS, rules.limits_problems(rendered[0]))


def check_plain_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 4, every stack: no credential-named key with a value outside the catalog's encrypted paths."""
    if args.resource_type != rules.RELEASE_TYPE:
        return
    facts = _facts(args)
    values = rules.plain(args.props.get("values") or {})
    _report(report_violation, args, SECRETS, rules.plain_secret_problems(values, facts.secret_paths.get(_release_name(args), frozenset())))


POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name=CHARTS,
        description="A Helm release installs only charts this repository holds: charts/own/<name> or a locked archive in <chartsDir>/external/.",
        validate=check_chart_source,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name=TAGS,
        description="In prod every image the release renders names a fixed build: no `latest`, untagged or `-dev-` tag.",
        validate=check_prod_image_tags,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name=LIMITS,
        # Mandatory: the check reads the rendered containers, and our charts' defaults set
        # limits everywhere, so a violation is a real regression, never noise.
        description="In prod every container our own charts render has cpu and memory limits.",
        validate=check_prod_limits,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name=SECRETS,
        description="No credential (keys named *password*, *token*, *secret*) in a release's plain values: only the catalog's encrypted paths.",
        validate=check_plain_secrets,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
