"""The dependency graph: tier order, needs, disabled and external releases, cycles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model.catalog import Catalog, load_catalog, parse_catalog
from model.errors import InputError
from model.graph import plan

ROOT = Path(__file__).resolve().parents[2]


def _catalog(releases: list[dict], tiers: list[str] | None = None) -> Catalog:
    return parse_catalog({"tiers": tiers or ["a", "b", "c"], "releases": releases}, "test-catalog.yaml")


def _r(name: str, tier: str, needs: list | None = None, enabled: bool = True) -> dict:
    return {"name": name, "tier": tier, "namespace": name, "chart": {"local": name}, "needs": needs or [], "enabled": enabled}


def test_each_release_waits_for_every_release_of_the_previous_tier() -> None:
    catalog = _catalog([_r("a1", "a"), _r("a2", "a"), _r("b1", "b"), _r("c1", "c")])
    graph = plan(catalog, {"a1", "a2", "b1", "c1"}, set())
    assert graph.depends_on["b1"] == ("a1", "a2")
    assert graph.depends_on["c1"] == ("b1",)
    assert graph.depends_on["a1"] == ()


def test_an_empty_tier_is_skipped_not_a_barrier_to_nothing() -> None:
    catalog = _catalog([_r("a1", "a"), _r("b1", "b", enabled=False), _r("c1", "c")])
    graph = plan(catalog, {"a1", "c1"}, set())
    assert graph.depends_on["c1"] == ("a1",), "c waits for the nearest earlier tier that has releases"


def test_needs_add_dependencies_inside_a_tier() -> None:
    catalog = _catalog([_r("a1", "a", needs=["a2"]), _r("a2", "a")])
    graph = plan(catalog, {"a1", "a2"}, set())
    assert graph.depends_on["a1"] == ("a2",)
    assert graph.order.index("a2") < graph.order.index("a1")


def test_unknown_need_is_named() -> None:
    catalog = _catalog([_r("a1", "a", needs=["ghost"])])
    with pytest.raises(InputError, match=re.escape("'a1' needs 'ghost', which is not in test-catalog.yaml")):
        plan(catalog, {"a1"}, set())


def test_unknown_enabled_release_is_named() -> None:
    catalog = _catalog([_r("a1", "a")])
    with pytest.raises(InputError, match=re.escape("release 'zz' is not in")):
        plan(catalog, {"a1", "zz"}, set())


def test_need_on_disabled_release_says_how_to_fix() -> None:
    catalog = _catalog([_r("a1", "a"), _r("b1", "b", needs=["a1"])])
    with pytest.raises(InputError) as caught:
        plan(catalog, {"b1"}, set())
    assert "releases.a1.enabled: true" in str(caught.value) and "externals.a1" in str(caught.value)


def test_need_met_by_an_external_service() -> None:
    catalog = _catalog([_r("a1", "a"), _r("b1", "b", needs=["a1"])])
    graph = plan(catalog, {"b1"}, {"a1"})
    assert graph.depends_on["b1"] == () and graph.external == {"b1": "a1"}


def test_enabled_and_external_at_once_is_refused() -> None:
    catalog = _catalog([_r("a1", "a")])
    with pytest.raises(InputError, match=re.escape("enabled and also given as external")):
        plan(catalog, {"a1"}, {"a1"})


def test_cycle_inside_a_tier_is_reported_with_its_path() -> None:
    catalog = _catalog([_r("a1", "a", needs=["a2"]), _r("a2", "a", needs=["a1"])])
    with pytest.raises(InputError) as caught:
        plan(catalog, {"a1", "a2"}, set())
    assert "dependency cycle: a1 (a) -> a2 (a) -> a1 (a)" in str(caught.value)


def test_need_on_a_later_tier_is_a_cycle() -> None:
    catalog = _catalog([_r("a1", "a", needs=["b1"]), _r("b1", "b")])
    with pytest.raises(InputError, match=re.escape("dependency cycle")):
        plan(catalog, {"a1", "b1"}, set())


def test_several_problems_are_reported_together() -> None:
    catalog = _catalog([_r("a1", "a", needs=["ghost"]), _r("b1", "b", needs=["a9"])])
    with pytest.raises(InputError) as caught:
        plan(catalog, {"a1", "b1"}, set())
    assert len(caught.value.problems) == 2


def test_the_real_catalog_orders_tiers_as_designed() -> None:
    catalog = load_catalog(ROOT / "catalog/releases.yaml")
    graph = plan(catalog, {r.name for r in catalog.releases}, set())
    tiers = {r.name: catalog.tiers.index(r.tier) for r in catalog.releases}
    positions = {name: i for i, name in enumerate(graph.order)}
    for name, deps in graph.depends_on.items():
        for dep in deps:
            assert positions[dep] < positions[name], f"{dep} must come before {name}"
            assert tiers[dep] <= tiers[name]
    assert graph.depends_on["keycloak"][-1] == "keycloak-addons" or "keycloak-addons" in graph.depends_on["keycloak"]
