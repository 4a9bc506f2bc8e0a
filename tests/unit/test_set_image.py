"""`make set-image`: exactly one value changes on a good bump; every refusal changes nothing."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from commands.set_image import environment, set_image
from model.errors import InputError
from model.imagetag import check_tag, components, replace_value

ROOT = Path(__file__).resolve().parents[2]
GOOD_SHA = "0a1b2c3"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The stack files and the product chart's values, copied: the command edits them."""
    for stack in ROOT.glob("Pulumi.*.yaml"):
        shutil.copy(stack, tmp_path / stack.name)
    (tmp_path / "charts/own/astrago").mkdir(parents=True)
    shutil.copy(ROOT / "charts/own/astrago/values.yaml", tmp_path / "charts/own/astrago/values.yaml")
    (tmp_path / "Pulumi.acme.yaml").write_text("config:\n  astrago-deploy:inherits: prod\n  astrago-deploy:releases:\n"
                                               "    astrago:\n      values:\n        core:\n          image:\n            tag: core-prod-8d2e4b1\n")
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_components_are_the_charts_images_with_component_tags() -> None:
    import yaml

    assert components(yaml.safe_load((ROOT / "charts/own/astrago/values.yaml").read_text())) == ["batch", "core", "experiment", "frontend", "monitor"]


@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_a_good_bump_changes_exactly_the_components_tag(project: Path, stack: str) -> None:
    before = (project / f"Pulumi.{stack}.yaml").read_text()
    said = set_image(project, stack, "core", f"core-{stack}-{GOOD_SHA}")
    after = (project / f"Pulumi.{stack}.yaml").read_text()
    changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    # One line out, the same line back with only the tag replaced.
    assert len(changed) == 2, changed
    removed, added = changed[0][1:], changed[1][1:]
    old_tag = removed.split("tag: ")[1].rstrip("}")
    assert removed.replace(old_tag, f"core-{stack}-{GOOD_SHA}") == added
    assert f"-> core-{stack}-{GOOD_SHA}" in said and f"Pulumi.{stack}.yaml:" in said
    import yaml

    values = yaml.safe_load(after)["config"]["astrago-deploy:releases"]["astrago"]["values"]
    assert values["core"]["image"]["tag"] == f"core-{stack}-{GOOD_SHA}"
    assert values["batch"]["image"]["tag"] == yaml.safe_load(before)["config"]["astrago-deploy:releases"]["astrago"]["values"]["batch"]["image"]["tag"]


def test_a_customer_stack_follows_its_environments_builds(project: Path) -> None:
    assert environment(project, "acme") == "prod"
    set_image(project, "acme", "core", f"core-prod-{GOOD_SHA}")
    assert f"tag: core-prod-{GOOD_SHA}\n" in (project / "Pulumi.acme.yaml").read_text()


def test_the_same_tag_again_writes_nothing(project: Path) -> None:
    before = snapshot(project)
    assert "nothing changed" in set_image(project, "dev", "core", "core-dev-3f9a1c2")
    assert snapshot(project) == before


@pytest.mark.parametrize(("stack", "component", "tag", "message"), [
    ("dve", "core", f"core-dev-{GOOD_SHA}", "STACK=dve has no Pulumi.dve.yaml; stacks: ["),
    ("dev", "scheduler", f"scheduler-dev-{GOOD_SHA}", "COMPONENT=scheduler is not a product component; choose one of ['batch', 'core'"),
    ("dev", "core", "latest", "TAG=latest is a mutable tag"),
    ("dev", "core", "core-dev-latest", "TAG=core-dev-latest is a mutable tag"),
    ("dev", "core", f"core-prod-{GOOD_SHA}", "does not start with 'core-dev-'"),
    ("dev", "core", f"batch-dev-{GOOD_SHA}", "does not start with 'core-dev-'"),
    ("dev", "core", "core-dev-XYZ", "'XYZ' is not a short git sha"),
    ("dev", "core", "core-dev-0a1b", "'0a1b' is not a short git sha"),
    ("acme", "core", f"core-acme-{GOOD_SHA}", "does not start with 'core-prod-'"),
    ("prod", "experiment", f"experiment-prod-{GOOD_SHA}", "Pulumi.prod.yaml has no config.astrago-deploy:releases.astrago.values.experiment"),
    ("local", "core", f"core-local-{GOOD_SHA}", "Pulumi.local.yaml has no config.astrago-deploy:releases.astrago.values.core"),
])
def test_refusals_change_nothing(project: Path, stack: str, component: str, tag: str, message: str) -> None:
    before = snapshot(project)
    with pytest.raises(InputError) as refused:
        set_image(project, stack, component, tag)
    assert message in str(refused.value)
    assert snapshot(project) == before


def test_an_inherits_loop_is_refused(project: Path) -> None:
    (project / "Pulumi.a.yaml").write_text("config:\n  astrago-deploy:inherits: b\n")
    (project / "Pulumi.b.yaml").write_text("config:\n  astrago-deploy:inherits: a\n")
    with pytest.raises(InputError, match="loops"):
        environment(project, "a")


def test_check_tag_accepts_a_full_sha() -> None:
    check_tag("core", "dev", "core-dev-" + "a" * 40)


def test_replace_value_keeps_quoting_safe() -> None:
    edit = replace_value("a:\n  b: {c: old}  # why\n", ("a", "b", "c"), "new: value", "f.yaml")
    assert edit.text == 'a:\n  b: {c: "new: value"}  # why\n' and edit.old == "old" and edit.line == 2


def test_the_command_line_refuses_without_a_traceback(project: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "commands.set_image", "--stack", "dev", "--component", "core", "--tag", "latest"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "set-image refused, nothing changed" in result.stderr and "Traceback" not in result.stderr


def test_an_event_with_several_images_is_applied_together(project: Path) -> None:
    from commands.set_image import apply_event

    done = apply_event(project, {"environment": "dev", "images": {"core": f"core-dev-{GOOD_SHA}", "batch": f"batch-dev-{GOOD_SHA}"}})
    assert len(done) == 2
    text = (project / "Pulumi.dev.yaml").read_text()
    assert f"core-dev-{GOOD_SHA}" in text and f"batch-dev-{GOOD_SHA}" in text


def test_an_event_with_one_bad_tag_changes_nothing(project: Path) -> None:
    from commands.set_image import apply_event

    before = snapshot(project)
    with pytest.raises(InputError, match="batch-dev-"):
        apply_event(project, {"environment": "dev", "images": {"core": f"core-dev-{GOOD_SHA}", "batch": "latest-dev"}})
    assert snapshot(project) == before


def test_an_event_for_a_customer_stack_must_name_its_environment(project: Path) -> None:
    from commands.set_image import apply_event

    with pytest.raises(InputError, match="runs the prod environment's builds"):
        apply_event(project, {"environment": "dev", "stack": "acme", "component": "core", "tag": f"core-dev-{GOOD_SHA}"})
    assert apply_event(project, {"environment": "prod", "stack": "acme", "component": "core", "tag": f"core-prod-{GOOD_SHA}"})


def test_the_event_file_as_the_workflow_passes_it(project: Path, tmp_path: Path) -> None:
    import json

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "set-image", "client_payload": {"environment": "dev", "component": "core", "tag": "core-dev-XYZ"}}))
    result = subprocess.run([sys.executable, "-m", "commands.set_image", "--event", str(event)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "'XYZ' is not a short git sha" in result.stderr
