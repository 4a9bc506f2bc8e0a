"""Product image tags in stack files: the tag rule and an edit that changes exactly one value.

The product's CI tags each component's image `{component}-{env}-{short sha}`
and asks this repository to follow (`make set-image`). A stack's environment
is the root of its `inherits` chain: dev, stage and prod are their own, a
customer stack inheriting prod runs prod's builds. The edit rewrites only the
characters of the tag scalar in the stack file, so the pull request it ends
in shows a one-line diff and keeps the file's layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from model.errors import InputError

RELEASE = "astrago"
# Where a component's tag lives in the astrago release's values.
TAG_PATH = ("image", "tag")
SHORT_SHA = re.compile(r"[0-9a-f]{7,40}")
# Tags that name no build: what they point at changes without a commit here.
MUTABLE_TAGS = {"latest", "stable", "main", "master", "dev", "edge", "nightly"}
SAFE_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def components(chart_values: Mapping[str, Any]) -> list[str]:
    """The product components whose image tag a stack may set: the astrago chart's values with `image.tag`."""
    return sorted(
        name for name, body in chart_values.items()
        if isinstance(body, Mapping) and isinstance(body.get("image"), Mapping) and "tag" in body["image"]
        and str(body["image"]["tag"]).startswith(f"{name}-")
    )


def check_tag(component: str, environment: str, tag: str) -> None:
    """Refuse a tag that is not `{component}-{environment}-{short sha}` (InputError says which part is wrong)."""
    if tag in MUTABLE_TAGS or tag.split("-")[-1] in MUTABLE_TAGS:
        raise InputError(f"TAG={tag} is a mutable tag: deploy an immutable build tag `{component}-{environment}-<short sha>`")
    prefix = f"{component}-{environment}-"
    if not tag.startswith(prefix):
        raise InputError(f"TAG={tag} does not start with {prefix!r}: a {component} image for the {environment} environment is tagged `{prefix}<short sha>`")
    if not SHORT_SHA.fullmatch(tag[len(prefix):]):
        raise InputError(f"TAG={tag}: {tag[len(prefix):]!r} is not a short git sha (7 to 40 hex digits, lower case)")


@dataclass(frozen=True)
class Edit:
    """One scalar of a stack file replaced in place."""

    text: str
    """The whole new file text."""
    old: str
    """The value before (as YAML read it)."""
    line: int
    """1-based line of the value."""


def replace_value(text: str, path: tuple[str, ...], new: str, file: str) -> Edit:
    """Replace the scalar at `path` (mapping keys from the document root) by `new`, touching nothing else.

    InputError when the file is not YAML, a key on the path is missing or the value is not a scalar.
    """
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as error:
        raise InputError(f"{file}: not valid YAML: {error}") from None
    walked: list[str] = []
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            raise InputError(f"{file}: {'.'.join(walked) or 'the document'} is not a map, so it has no {key!r}")
        found = next((value for name, value in node.value if isinstance(name, yaml.ScalarNode) and name.value == key), None)
        walked.append(key)
        if found is None:
            raise InputError(f"{file} has no {'.'.join(walked)}: set-image changes a tag the stack already pins; add it once in a reviewed change")
        node = found
    if not isinstance(node, yaml.ScalarNode):
        raise InputError(f"{file}: {'.'.join(path)} is not a single value")
    start, end = node.start_mark.index, node.end_mark.index
    replacement = new if SAFE_PLAIN.fullmatch(new) else json.dumps(new)
    return Edit(text=text[:start] + replacement + text[end:], old=str(node.value), line=node.start_mark.line + 1)
