"""Platform: the whole Astrago installation, tier after tier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import pulumi

from components.namespace import Namespace
from components.tier import Tier, TierArgs
from model.deployment import Deployment
from model.identity import PLATFORM_TYPE, namespace_name, tier_name

# Label on every namespace the program creates, so operators (and the destroy
# test) can tell them from namespaces someone else made.
MANAGED_BY = {"app.kubernetes.io/managed-by": "astrago-deploy"}


class PlatformArgs(TypedDict):
    """Inputs of the Platform."""

    deployment: Deployment
    """The stack resolved and checked by model.deployment.prepare."""
    secrets: Mapping[str, pulumi.Output[str]]
    """Secret config key -> secret Output, for every key the deployment needs."""
    endpoints: Mapping[str, str]
    """Product endpoints to export (name -> URL), computed from plain settings."""


class Platform(pulumi.ComponentResource):
    """Namespaces, then the four tiers in order; outputs what runs where."""

    tiers: list[Tier]
    releases: pulumi.Output[dict[str, Any]]
    """Per release: chart, version, digest, namespace, status."""
    endpoints: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(PLATFORM_TYPE, name, None, opts)
        deployment = args["deployment"]
        namespaces: dict[str, pulumi.Resource] = {}
        for release in deployment.releases.values():
            if release.namespace not in namespaces:
                namespaces[release.namespace] = Namespace(
                    namespace_name(name, release.namespace), release.namespace, MANAGED_BY,
                    opts=pulumi.ResourceOptions(parent=self),
                )
        ready: dict[str, Sequence[pulumi.Resource]] = {}
        self.tiers = []
        for tier_key, members in deployment.plan.tiers:
            if not members:
                continue
            tier = Tier(
                tier_name(name, tier_key),
                TierArgs(
                    releases=[deployment.releases[m] for m in members],
                    upstream=dict(ready),
                    namespaces=namespaces,
                    secrets=args["secrets"],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.tiers.append(tier)
            for release_name, member in tier.releases.items():
                ready[release_name] = member.ready
        members_by_name = {n: m for t in self.tiers for n, m in t.releases.items()}
        self.releases = pulumi.Output.all(
            *[pulumi.Output.all(n, m.chart, m.version, m.digest, m.namespace, m.status) for n, m in members_by_name.items()]
        ).apply(lambda rows: {
            row[0]: {"chart": row[1], "version": row[2], "digest": row[3], "namespace": row[4], "status": row[5]} for row in rows
        })
        self.endpoints = pulumi.Output.from_input(dict(args["endpoints"]))
        self.register_outputs({"releases": self.releases, "endpoints": self.endpoints})
