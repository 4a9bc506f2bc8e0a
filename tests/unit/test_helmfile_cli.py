"""Reading Helmfile's resolved state (the parts of cli/helmfile that need no Helmfile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.helmfile import _release, state_file
from cli.process import ToolError
from commands.parity import stable_only
from model.structdiff import Change, ObjectsDiff


def test_a_built_release_keeps_every_field_and_its_values_in_order() -> None:
    release = _release({"name": "harbor", "namespace": "harbor", "chart": "/c/harbor.tgz", "installed": False,
                        "values": [{"a": {"b": 1, "c": 1}}, {"a": {"b": 2}}], "needs": ["nfs-provisioner/nfs-provisioner"],
                        "hooks": [{"events": ["preuninstall"], "command": "sleep"}], "labels": {"tier": "security"}, "timeout": 900})
    assert (release.installed, release.needs, release.fields) == (False, ("nfs-provisioner/nfs-provisioner",), {"labels": {"tier": "security"}, "timeout": 900})
    assert release.merged_values() == {"a": {"b": 2, "c": 1}}
    assert _release({"name": "x", "values": ["values/x.yaml.gotmpl"]}).fields == {"values (not embedded)": ["values/x.yaml.gotmpl"]}


def test_the_state_file_is_found_or_named(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"no helmfile.yaml.gotmpl / helmfile.yaml / helmfile.d"):
        state_file(tmp_path)
    (tmp_path / "helmfile.yaml").write_text("releases: []\n")
    assert state_file(tmp_path) == tmp_path / "helmfile.yaml"


def test_fields_generated_on_every_render_are_left_out_of_parity() -> None:
    key = ("apps/v1", "Deployment", "harbor", "harbor-core")
    result = ObjectsDiff(changed={key: [Change("spec.template.metadata.annotations.checksum/secret", "a", "b"), Change("spec.replicas", 1, 2)]})
    kept = stable_only(result, {(key, "spec.template.metadata.annotations.checksum/secret")})
    assert [c.path for c in kept.changed[key]] == ["spec.replicas"]
    assert not stable_only(result, {(key, "spec.template.metadata.annotations.checksum/secret"), (key, "spec.replicas")}).differs
