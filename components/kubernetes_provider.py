"""The resource options every Kubernetes resource of the program gets: the provider version.

The Kubernetes SDK's classes merge `pulumi_kubernetes._utilities.get_resource_opts_defaults()`
into their options, which pins the default provider to the SDK's own version. Importing
`pulumi_kubernetes` for that costs about 10 ms of every run, so the version is written
here: the pulumi-kubernetes pin of requirements.txt, which is also the provider plugin
`make setup` builds (toolchain/tools.toml). tests/unit/test_sdk_equivalence.py compares
what our resources and the SDK's register, version included, so the two cannot drift.
"""

from __future__ import annotations

import pulumi

VERSION = "4.25.0"


def with_provider_defaults(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """`opts` over the SDK's defaults, as the SDK's resource classes merge them."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=VERSION), opts)
