"""Composite settings: templates over platform settings and the release's own values."""

from __future__ import annotations

from typing import Any

import pytest

from model.catalog import PLATFORM_SETTINGS
from model.derived import apply_settings, check_spec, render, set_indexed
from model.errors import InputError

PLATFORM = {"externalIP": "10.0.0.1", "imageRegistry": None, "fileServer": "http://fs:8080"}


def test_plain_setting_is_the_value_itself() -> None:
    assert render("externalIP", PLATFORM, {}) == "10.0.0.1"


def test_template_fills_settings_fallbacks_and_values() -> None:
    values = {"expose": {"port": 30002}}
    assert render("http://{externalIP}:{values.expose.port}", PLATFORM, values) == "http://10.0.0.1:30002"
    assert render("{imageRegistry|docker.io}/goharbor/core", PLATFORM, values) == "docker.io/goharbor/core"
    assert render("{fileServer|https://example.invalid}/t.jar", PLATFORM, values) == "http://fs:8080/t.jar"


def test_template_with_an_unset_reference_sets_nothing() -> None:
    assert render("{imageRegistry}/fluxcd/helm-controller", PLATFORM, {}) is None
    assert apply_settings({"a": 1}, {}, {"b": "{imageRegistry}/x"}, PLATFORM) == {"a": 1}


def test_stack_override_wins_and_templates_read_the_overridden_values() -> None:
    lower = {"expose": {"port": 30002}}
    settings = {"externalURL": "http://{externalIP}:{values.expose.port}"}
    assert apply_settings(lower, {"expose": {"port": 31002}}, settings, PLATFORM)["externalURL"] == "http://10.0.0.1:31002"
    assert apply_settings(lower, {"externalURL": "https://harbor.site"}, settings, PLATFORM)["externalURL"] == "https://harbor.site"


def test_paths_index_lists_of_the_base_values() -> None:
    values: dict[str, Any] = {"initContainers": [{"name": "theme", "env": [{"name": "URL", "value": ""}]}]}
    set_indexed(values, "initContainers[0].env[0].value", "http://x")
    assert values["initContainers"][0]["env"][0]["value"] == "http://x"
    with pytest.raises(InputError, match=r"item \[1\] does not exist"):
        set_indexed(values, "initContainers[1].image", "x")


@pytest.mark.parametrize(("spec", "problem"), [
    ("externalIP", None),
    ("http://{externalIP}:{values.a.b}", None),
    ("nope", "names 'nope'"),
    ("{nope|x}/y", "refers to {nope}"),
    ("{externalIP", "unmatched brace"),
])
def test_catalog_entries_are_checked(spec: str, problem: str | None) -> None:
    found = check_spec(spec, PLATFORM_SETTINGS)
    assert found is None if problem is None else (found is not None and problem in found)
