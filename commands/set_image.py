"""`make set-image STACK=<stack> COMPONENT=<component> TAG=<tag>`: follow a product build.

Changes exactly one value of Pulumi.<stack>.yaml, the component's image tag
under the astrago release, after checking the stack, the component and the
tag (`{component}-{env}-{short sha}` for the stack's environment, never a
mutable tag). Anything refused changes nothing. The workflow
`.github/workflows/set-image.yml` runs it for the product CI's
`repository_dispatch` events and opens the pull request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from commands import ROOT
from model.errors import InputError
from model.imagetag import RELEASE, TAG_PATH, check_tag, components, replace_value
from model.stackfile import PROJECT

CHART_VALUES = Path("charts/own/astrago/values.yaml")
# Longer chains are a mistake (and a cycle must end somewhere).
MAX_INHERITS = 8


def known_stacks(root: Path) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def environment(root: Path, stack: str) -> str:
    """The root of the stack's `inherits` chain (the stack itself when it inherits nothing)."""
    seen = [stack]
    current = stack
    for _ in range(MAX_INHERITS):
        path = root / f"Pulumi.{current}.yaml"
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise InputError(f"{path.name}: not valid YAML: {error}") from None
        parent = ((data.get("config") or {}) if isinstance(data, dict) else {}).get(f"{PROJECT}:inherits")
        if not parent:
            return current
        if parent in seen:
            raise InputError(f"Pulumi.{stack}.yaml: `inherits` loops ({' -> '.join([*seen, parent])})")
        if not (root / f"Pulumi.{parent}.yaml").is_file():
            raise InputError(f"Pulumi.{current}.yaml inherits {parent!r}, which has no stack file")
        seen.append(parent)
        current = parent
    raise InputError(f"Pulumi.{stack}.yaml: `inherits` chain longer than {MAX_INHERITS}: {' -> '.join(seen)}")


def set_image(root: Path, stack: str, component: str, tag: str) -> str:
    """Check and write the new tag; return what was done (InputError, nothing written, when refused)."""
    stacks = known_stacks(root)
    if stack not in stacks:
        raise InputError(f"STACK={stack} has no Pulumi.{stack}.yaml; stacks: {stacks}")
    allowed = components(yaml.safe_load((root / CHART_VALUES).read_text()) or {})
    if component not in allowed:
        raise InputError(f"COMPONENT={component} is not a product component; choose one of {allowed}")
    check_tag(component, environment(root, stack), tag)
    path = root / f"Pulumi.{stack}.yaml"
    keys = ("config", f"{PROJECT}:releases", RELEASE, "values", component, *TAG_PATH)
    edit = replace_value(path.read_text(), keys, tag, path.name)
    where = f"{path.name}:{edit.line}: releases.{RELEASE}.values.{component}.{'.'.join(TAG_PATH)}"
    if edit.old == tag:
        return f"{where} is already {tag}; nothing changed"
    path.write_text(edit.text)
    return f"{where}: {edit.old} -> {tag}"


def apply_event(root: Path, payload: Mapping[str, object]) -> list[str]:
    """Apply a product CI event, all or nothing: every tag is checked before any file is written.

    payload: `{"environment": "dev", "images": {"core": "core-dev-3f9a1c2", ...}}`, or one image as
    `{"environment": ..., "component": ..., "tag": ...}`; `stack` (default: the environment's
    own stack) names a customer stack that follows the environment's builds.
    """
    environment_name = payload.get("environment")
    if not isinstance(environment_name, str) or not environment_name:
        raise InputError("the event's client_payload has no `environment` (dev, stage, prod)")
    stack = payload.get("stack") or environment_name
    images = payload.get("images")
    if images is None and "component" in payload:
        images = {payload["component"]: payload.get("tag")}
    if not isinstance(stack, str) or not isinstance(images, Mapping) or not images:
        raise InputError("the event's client_payload needs `images: {<component>: <tag>}` (or `component` and `tag`)")
    if environment(root, stack) != environment_name:
        raise InputError(f"stack {stack!r} runs the {environment(root, stack)} environment's builds, not {environment_name!r}")
    path = root / f"Pulumi.{stack}.yaml"
    before = path.read_text() if path.is_file() else ""
    done = []
    try:
        for component, tag in sorted(images.items()):
            if not isinstance(tag, str):
                raise InputError(f"images.{component}: the tag must be a string")
            done.append(set_image(root, stack, str(component), tag))
    except InputError:
        if path.is_file():
            path.write_text(before)
        raise
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack")
    parser.add_argument("--component")
    parser.add_argument("--tag")
    parser.add_argument("--event", type=Path, help="a repository_dispatch event file ($GITHUB_EVENT_PATH): apply its client_payload")
    args = parser.parse_args(argv)
    if not args.event and not (args.stack and args.component and args.tag):
        parser.error("give --stack, --component and --tag, or --event")
    try:
        if args.event:
            try:
                payload = json.loads(args.event.read_text()).get("client_payload") or {}
            except (OSError, ValueError, AttributeError) as error:
                raise InputError(f"{args.event}: not a repository_dispatch event ({error})") from None
            print("\n".join(apply_event(ROOT, payload)))
        else:
            print(set_image(ROOT, args.stack, args.component, args.tag))
    except InputError as error:
        print(f"error: set-image refused, nothing changed:\n{error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
