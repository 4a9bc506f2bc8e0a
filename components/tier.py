"""Tier: the releases of one tier, each started after what it depends on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi

from components.local_release import LocalRelease, LocalReleaseArgs
from model.deployment import ResolvedRelease
from model.identity import TIER_TYPE, local_release_name


class TierArgs(TypedDict):
    """Inputs of a Tier."""

    releases: Sequence[ResolvedRelease]
    """Enabled releases of this tier, in dependency order."""
    upstream: Mapping[str, Sequence[pulumi.Resource]]
    """Release name -> what dependants wait for, for releases of earlier tiers."""
    namespaces: Mapping[str, pulumi.Resource]
    """Namespace name -> the Namespace resource the Platform created."""
    secrets: Mapping[str, pulumi.Output[str]]
    """Secret config key -> secret Output."""


class Tier(pulumi.ComponentResource):
    """One of the platform's tiers (infrastructure, monitoring, security, applications)."""

    releases: dict[str, LocalRelease]
    """The tier's releases by name."""
    statuses: pulumi.Output[dict[str, str]]
    """Helm status per release."""

    def __init__(self, name: str, args: TierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TIER_TYPE, name, None, opts)
        ready: dict[str, Sequence[pulumi.Resource]] = dict(args["upstream"])
        self.releases = {}
        for release in args["releases"]:
            after = [resource for dep in release.depends_on for resource in ready[dep]]
            after.append(args["namespaces"][release.namespace])
            member = LocalRelease(
                local_release_name(name, release.name),
                LocalReleaseArgs(
                    release_name=release.name,
                    namespace=release.namespace,
                    chart_path=release.chart_path,
                    chart_version=release.chart_version,
                    chart_digest=release.chart_digest,
                    values=release.values,
                    secret_values={path: args["secrets"][key] for path, key in release.secret_paths.items()},
                    helm=release.helm,
                    hooks=release.hooks,
                    after=after,
                    adopt=release.adopt,
                    postrender=release.postrender,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.releases[release.name] = member
            ready[release.name] = member.ready
        names = list(self.releases)
        self.statuses = pulumi.Output.all(*[m.status for m in self.releases.values()]).apply(
            lambda statuses: dict(zip(names, statuses, strict=True))
        )
        self.register_outputs({"statuses": self.statuses})
