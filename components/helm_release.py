"""HelmRelease: a Helm release, registered without importing `pulumi_kubernetes.helm.v3`.

Importing that module imports the SDK's YAML module and, through it,
`requests`: about 0.04 s on every run of the program, spent before the first
registration reaches the engine (bench/README.md). This registers exactly
what `pulumi_kubernetes.helm.v3.Release` registers for the options the
program uses: the same type token, the same input names (camelCase, as the
SDK's argument types translate them), the SDK's fixed `compat: "true"`, and
the same provider defaults. State, previews and diffs are the same as with
the SDK class (tests/unit/test_sdk_equivalence.py registers both and
compares the requests the engine receives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.kubernetes_provider import with_provider_defaults
from model.identity import RELEASE_TYPE

# Every input of the SDK's Release, unset unless the program sets it: the SDK
# registers each one (as null), so these keep the registration identical.
_SDK_INPUTS = (
    "allowNullValues", "atomic", "chart", "cleanupOnFail", "createNamespace", "dependencyUpdate",
    "description", "devel", "disableCRDHooks", "disableOpenapiValidation", "disableWebhooks",
    "forceUpdate", "keyring", "lint", "manifest", "maxHistory", "name", "namespace", "postrender",
    "recreatePods", "renderSubchartNotes", "replace", "repositoryOpts", "resetValues", "resourceNames",
    "reuseValues", "skipAwait", "skipCrds", "timeout", "valueYamlFiles", "values", "verify", "version",
    "waitForJobs",
)


@dataclass(frozen=True)
class HelmReleaseArgs:
    """The Release inputs the program sets (names as in `pulumi_kubernetes.helm.v3.ReleaseArgs`)."""

    name: str
    """Helm release name."""
    namespace: str
    """Namespace to install into."""
    chart: str
    """Chart folder or archive path."""
    values: Mapping[str, Any]
    """Helm values; may hold secret Outputs (the whole property is then secret)."""
    description: str
    """Helm's release description."""
    postrender: str | None
    """Post-renderer command, or None."""
    atomic: bool
    cleanup_on_fail: bool
    timeout: int
    """Seconds Helm waits for the release to become ready."""
    skip_await: bool
    wait_for_jobs: bool
    max_history: int
    create_namespace: bool


class HelmRelease(pulumi.CustomResource):
    """A Helm release managed by the Kubernetes provider (the SDK's `Release` type, RELEASE_TYPE)."""

    status: pulumi.Output[dict[str, Any]]
    """Helm's view of the release: status, revision, name, namespace, chart, version, appVersion."""

    def __init__(self, resource_name: str, args: HelmReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The SDK's own defaults (provider plugin version): the same default provider as every other kubernetes resource.
        opts = with_provider_defaults(opts)
        props: dict[str, Any] = dict.fromkeys(_SDK_INPUTS)
        props.update({
            "name": args.name,
            "namespace": args.namespace,
            "chart": args.chart,
            "values": args.values,
            "description": args.description,
            "postrender": args.postrender,
            "atomic": args.atomic,
            "cleanupOnFail": args.cleanup_on_fail,
            "timeout": args.timeout,
            "skipAwait": args.skip_await,
            "waitForJobs": args.wait_for_jobs,
            "maxHistory": args.max_history,
            "createNamespace": args.create_namespace,
            # Set by the SDK class on every Release: the provider's behaviour for programs of this SDK.
            "compat": "true",
            # Output of the provider; listed so the engine fills it in, as in the SDK class.
            "status": None,
        })
        super().__init__(RELEASE_TYPE, resource_name, props, opts)
