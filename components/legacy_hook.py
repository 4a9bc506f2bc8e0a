"""The provider of hooks made before the astrago-hooks plugin, kept so they can be removed.

Hooks were Pulumi dynamic resources until the astrago-hooks provider
(toolchain/go/hooks-provider) replaced them. A stack deployed before then
holds each hook with its provider pickled *by reference* as
`components.hook._HookProvider`; its first update with the new provider
replaces every hook, and the engine hands the old ones to the Python dynamic
provider, which imports that name to delete them; `components/hook.py`
resolves the name to this class. Deleting an old hook does what it always
did: a preDelete hook waits its delay_s (so the first such update waits
once, 30 s for nfs-provisioner's), a preInstall check does nothing.

Remove this module, and the lookup in components/hook.py, once no stack's
state holds a `pulumi-python:dynamic:Resource`
(`pulumi stack export | grep -c pulumi-python:dynamic` is 0 everywhere).
"""

from __future__ import annotations

import time
from typing import Any

from pulumi.dynamic import ResourceProvider


class _HookProvider(ResourceProvider):
    """Deletes a hook created by the dynamic provider: waits a preDelete hook's delay."""

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        delay = int(props.get("delay_s") or 0)
        if delay:
            time.sleep(delay)


# The state of old hooks names this class by its old home, components.hook._HookProvider;
# pickle and dill look it up there (components/hook.py answers with this class).
_HookProvider.__module__ = "components.hook"
