"""Namespace: a Kubernetes namespace, registered without importing the typed core/v1 SDK module.

`pulumi_kubernetes.core.v1` loads every core/v1 type when any one of them is
imported: about 0.12 s of CPU on every run of the program (preview, up,
destroy), a quarter of the program's own time in a no-change preview
(bench/README.md). The Platform needs only Namespace, so this registers
exactly what `pulumi_kubernetes.core.v1.Namespace` registers: the same type
token, the same inputs (apiVersion, kind, metadata) and the same provider
defaults. Stack state, previews and diffs are the same as with the SDK class.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.kubernetes_provider import with_provider_defaults
from model.identity import NAMESPACE_TYPE


class Namespace(pulumi.CustomResource):
    """A namespace named `name` with `labels`, managed by the Kubernetes provider."""

    def __init__(self, resource_name: str, name: str, labels: Mapping[str, str], opts: pulumi.ResourceOptions | None = None) -> None:
        # The SDK's own defaults (provider plugin version): the same default provider as every other kubernetes resource.
        opts = with_provider_defaults(opts)
        props = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": None,
            # Output of the provider; listed so the engine fills it in, as in the SDK class.
            "status": None,
        }
        super().__init__(NAMESPACE_TYPE, resource_name, props, opts)
