"""The pack's policies: pulumi-policy glue around the plain checks in policy.rules.

Each violation's message names the release, the resource (its URN) and the rule,
then the values path at fault; the engine prints it under the policy's name.
"""

from __future__ import annotations

import os
from pathlib import Path

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from model.identity import RELEASE_TYPE
from policy import rules

CHARTS = "charts-from-this-repo"
TAGS = "prod-pinned-image-tags"
LIMITS = "prod-resource-limits"
SECRETS = "no-plain-secrets"


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
    if args.resource_type != RELEASE_TYPE:
        return
    problems = rules.chart_source_problems(args.props.get("chart"), rules.plain(args.props.get("repositoryOpts")), _facts(args))
    _report(report_violation, args, CHARTS, problems)


def check_prod_image_tags(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 2, prod only: no `latest`, untagged or `-dev-` image (our charts' defaults included)."""
    if args.resource_type != RELEASE_TYPE:
        return
    facts = _facts(args)
    if not facts.is_prod:
        return
    values, _ = rules.effective_values(args.props.get("values") or {}, str(args.props.get("chart") or ""), facts.root)
    _report(report_violation, args, TAGS, rules.image_tag_problems(values))


def check_prod_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 3, prod only: every enabled workload of our own charts has cpu and memory limits.

    A third-party archive is marked not applicable: its values do not say which containers
    exist, and only rendering would.
    """
    if args.resource_type != RELEASE_TYPE:
        return
    facts = _facts(args)
    if not facts.is_prod:
        return
    values, own = rules.effective_values(args.props.get("values") or {}, str(args.props.get("chart") or ""), facts.root)
    if not own:
        args.not_applicable("a third-party chart: which workloads it renders is not in its values")
    _report(report_violation, args, LIMITS, rules.limits_problems(values))


def check_plain_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Rule 4, every stack: no credential-named key with a value outside the catalog's encrypted paths."""
    if args.resource_type != RELEASE_TYPE:
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
        description="In prod every image names a fixed build: no `latest`, untagged or `-dev-` tag.",
        validate=check_prod_image_tags,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name=LIMITS,
        # Mandatory: on our own charts the check is exact (values are templated verbatim) and
        # their defaults set limits everywhere, so a violation is a real regression, never noise.
        description="In prod every workload of our own charts has cpu and memory limits.",
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
