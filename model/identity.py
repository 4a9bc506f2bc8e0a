"""The names of things: type tokens, resource names, URNs, the release description, the secret marker.

Every module that writes or reads one of these imports it from here, so a
rename is one edit: the components register with these tokens and names,
`commands/targets.py` builds `--target` URNs with the same functions, the
audit parses the release description with the function that formats it,
and the tools that read exported state recognise secrets by the same
marker (tests/unit/test_identity.py derives every URN from a run of the
program and compares).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from model.stackfile import PROJECT

# --- type tokens ------------------------------------------------------------
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
"""The Kubernetes provider's Helm release (the SDK's `pulumi_kubernetes.helm.v3.Release`)."""
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
HOOK_TYPE = "astrago-hooks:index:Hook"
"""A hook of the astrago-hooks provider; its package (before the first ':') picks the plugin."""
PLATFORM_TYPE = "astrago:platform:Platform"
TIER_TYPE = "astrago:tier:Tier"
LOCAL_RELEASE_TYPE = "astrago:local_release:LocalRelease"
STACK_TYPE = "pulumi:pulumi:Stack"

# --- resource names -----------------------------------------------------------
PLATFORM_NAME = "astrago"
"""The Platform component's name: every other name starts with it."""


def tier_name(platform: str, tier: str) -> str:
    """The Tier component of `tier`."""
    return f"{platform}-{tier}"


def local_release_name(tier_component: str, release: str) -> str:
    """The LocalRelease component of a catalog release, inside its Tier."""
    return f"{tier_component}-{release}"


def helm_release_name(local_release: str) -> str:
    """The Helm release resource inside a LocalRelease."""
    return f"{local_release}-release"


def hook_name(local_release: str, hook: str) -> str:
    """A hook resource inside a LocalRelease."""
    return f"{local_release}-{hook}"


def namespace_name(platform: str, namespace: str) -> str:
    """The Namespace resource of a namespace, inside the Platform."""
    return f"{platform}-ns-{namespace}"


# --- URNs -------------------------------------------------------------------
def urn(stack: str, parents: tuple[str, ...], type_: str, name: str, project: str = PROJECT) -> str:
    """A resource's URN: its parents' types (outermost first, the stack excluded), its type and name."""
    return f"urn:pulumi:{stack}::{project}::{'$'.join((*parents, type_))}::{name}"


RELEASE_CHAIN = (PLATFORM_TYPE, TIER_TYPE, LOCAL_RELEASE_TYPE)
"""The components above every Helm release and hook."""


def release_urn(stack: str, tier: str, release: str) -> str:
    """The URN of a catalog release's Helm release resource."""
    component = local_release_name(tier_name(PLATFORM_NAME, tier), release)
    return urn(stack, RELEASE_CHAIN, RELEASE_TYPE, helm_release_name(component))


def hook_urn(stack: str, tier: str, release: str, hook: str) -> str:
    """The URN of one of a catalog release's hooks."""
    component = local_release_name(tier_name(PLATFORM_NAME, tier), release)
    return urn(stack, RELEASE_CHAIN, HOOK_TYPE, hook_name(component, hook))


def urn_name(text: str) -> str:
    """The resource name at the end of a URN."""
    return text.rsplit("::", 1)[-1]


# --- the Helm release description ---------------------------------------------
_DESCRIPTION = re.compile(r"^chart (?P<version>\S+) sha256:(?P<digest>[0-9a-f]{64})(?:; (?P<extra>.*))?$")


@dataclass(frozen=True)
class Description:
    """What the program writes into every Helm release's description.

    Helm compares only values and the chart version; the digest (and what
    else shapes the rendered chart: post-render patches, registry) makes any
    change of chart content an update, and the audit reads it back.
    """

    version: str
    digest: str
    """sha256 of the chart content (own charts) or of the locked archive (external charts), hex."""
    extra: str = ""
    """What else changes the rendered chart (post-render), or ''."""

    def format(self) -> str:
        text = f"chart {self.version} sha256:{self.digest}"
        return f"{text}; {self.extra}" if self.extra else text

    @classmethod
    def parse(cls, text: str) -> Description | None:
        """The description `format` wrote, or None for any other text."""
        match = _DESCRIPTION.match(text)
        return cls(match["version"], match["digest"], match["extra"] or "") if match else None


# --- secrets in serialized state ------------------------------------------------
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
"""Pulumi's marker key of a secret in serialized properties (resource.SecretSig in the SDK)."""
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
"""The marker key's value for a secret."""


def is_secret(value: Any) -> bool:
    """A serialized secret (exported state, engine events, mocks)."""
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG
