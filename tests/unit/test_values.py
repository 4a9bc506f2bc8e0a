"""Values layering and masking."""

from __future__ import annotations

import pytest

from model.errors import InputError
from model.values import MASK, deep_merge, flatten, get_path, layer_values, mask, set_path


def test_deep_merge_merges_maps_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}, "inputs are not modified"


def test_none_removes_a_key() -> None:
    assert deep_merge({"a": 1, "b": 2}, {"a": None}) == {"b": 2}


def test_layers_apply_lowest_first_and_stack_overrides_win() -> None:
    values = layer_values(
        base={"storage": {"storageClass": "base"}, "x": 1},
        settings={"global.domain": "site.example"},
        injected={"storage.storageClass": "from-endpoint"},
        overrides={"storage": {"storageClass": "from-stack"}},
    )
    assert values == {"storage": {"storageClass": "from-stack"}, "x": 1, "global": {"domain": "site.example"}}


def test_unset_platform_setting_does_not_blank_a_base_value() -> None:
    values = layer_values({"global": {"imageRegistry": "docker.io"}}, {"global.imageRegistry": None}, {}, {})
    assert values["global"]["imageRegistry"] == "docker.io"


def test_set_path_refuses_to_descend_into_a_scalar() -> None:
    with pytest.raises(InputError, match="'a' already holds 1"):
        set_path({"a": 1}, "a.b", 2)


def test_mask_replaces_secret_paths_only() -> None:
    values = {"db": {"password": "hunter2", "user": "astrago"}}
    masked = mask(values, ["db.password", "keycloak.clientSecret"])
    assert masked["db"] == {"password": MASK, "user": "astrago"}
    assert get_path(masked, "keycloak.clientSecret") == MASK
    assert values["db"]["password"] == "hunter2"


def test_flatten_names_each_leaf_by_its_dotted_path() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2], "d": {}}, "e": "x"}) == {"a.b": 1, "a.c": [1, 2], "a.d": {}, "e": "x"}
    assert flatten({}) == {"": {}}
