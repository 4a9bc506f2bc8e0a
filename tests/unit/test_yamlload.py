"""model/yamlload.py: libyaml's safe loader reads the project's data files exactly as PyYAML's does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model.yamlload import safe_load
from tests.conftest import ROOT

DATA_FILES = sorted([ROOT / "catalog" / "releases.yaml", *(ROOT / "values").glob("*.yaml"), *(ROOT / "charts" / "own").glob("*/Chart.yaml")])


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert hasattr(yaml, "CSafeLoader"), "the pinned PyYAML wheel ships libyaml; without it the program parses 3-5x slower"


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_data_file_loads_the_same_as_pyyaml(path: Path) -> None:
    text = path.read_text()
    assert safe_load(text) == yaml.safe_load(text), f"{path}: libyaml and PyYAML disagree"


def test_types_anchors_and_merge_keys_are_the_same() -> None:
    text = "a: &base {x: 1, y: yes, z: 0o17, t: 2026-11-23}\nb:\n  <<: *base\n  y: null\nc: [1.5, '1.5', ~]\n"
    assert safe_load(text) == yaml.safe_load(text)


def test_bad_yaml_raises_yamlerror_and_unsafe_tags_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        safe_load("a: [1, 2\n")
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']")
