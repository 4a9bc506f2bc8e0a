"""The dependency graph of the enabled releases, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass

from model.catalog import Catalog
from model.errors import InputError


@dataclass(frozen=True)
class Plan:
    """What a stack deploys and in which order."""

    tiers: tuple[tuple[str, tuple[str, ...]], ...]
    """Each tier with its enabled releases, in deploy order (empty tiers kept)."""
    depends_on: dict[str, tuple[str, ...]]
    """Release -> the enabled releases it waits for (tier order plus needs)."""
    external: dict[str, str]
    """Dependant release -> needed release met by an external service, per need."""
    order: tuple[str, ...]
    """All enabled releases in a dependency-respecting order."""

    @property
    def enabled(self) -> tuple[str, ...]:
        return self.order


def plan(catalog: Catalog, enabled: set[str], externals: set[str]) -> Plan:
    """Build the graph of enabled releases or raise InputError listing every problem.

    enabled: names of the releases the stack deploys; externals: names of
    releases the stack replaces by an external service.
    """
    releases = catalog.by_name()
    problems: list[str] = []
    for name in sorted((enabled | externals) - releases.keys()):
        problems.append(f"release {name!r} is not in {catalog.source}; known releases: {sorted(releases)}")
    both = enabled & externals
    for name in sorted(both):
        problems.append(f"release {name!r} is enabled and also given as external; set releases.{name}.enabled: false or remove externals.{name}")
    depends_on: dict[str, list[str]] = {}
    external_needs: dict[str, str] = {}
    previous: list[str] = []
    tiers: list[tuple[str, tuple[str, ...]]] = []
    for tier in catalog.tiers:
        members = [r.name for r in catalog.releases if r.tier == tier and r.name in enabled]
        tiers.append((tier, tuple(members)))
        for name in members:
            deps = list(previous)
            for need in releases[name].needs:
                if need.release not in releases:
                    problems.append(f"release {name!r} needs {need.release!r}, which is not in {catalog.source}; known releases: {sorted(releases)}")
                elif need.release in enabled:
                    if need.release not in deps:
                        deps.append(need.release)
                elif need.release in externals:
                    external_needs.setdefault(name, need.release)
                else:
                    problems.append(
                        f"release {name!r} needs {need.release!r}, which this stack disables; "
                        f"enable it (releases.{need.release}.enabled: true) or give its endpoint under externals.{need.release}"
                    )
            depends_on[name] = deps
        if members:
            previous = members
    if problems:
        raise InputError(*problems)
    order = _topological(depends_on, catalog)
    return Plan(
        tiers=tuple(tiers),
        depends_on={k: tuple(v) for k, v in depends_on.items()},
        external=external_needs,
        order=order,
    )


def _topological(depends_on: dict[str, list[str]], catalog: Catalog) -> tuple[str, ...]:
    """Kahn's algorithm in catalog order; a leftover means a cycle, reported by path."""
    position = {r.name: i for i, r in enumerate(catalog.releases)}
    waiting = {name: set(deps) for name, deps in depends_on.items()}
    order: list[str] = []
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if not deps), key=position.__getitem__)
        if not ready:
            cycle = _find_cycle(waiting)
            tiers = {r.name: r.tier for r in catalog.releases}
            path = " -> ".join(f"{n} ({tiers[n]})" for n in cycle)
            raise InputError(
                f"dependency cycle: {path}. A release waits for every release of the tier before it, "
                f"so a need may only point to the same or an earlier tier; remove one of these needs in {catalog.source}"
            )
        for name in ready:
            order.append(name)
            del waiting[name]
        for deps in waiting.values():
            deps.difference_update(ready)
    return tuple(order)


def _find_cycle(waiting: dict[str, set[str]]) -> list[str]:
    """One cycle among the releases still waiting, as a closed path."""
    start = min(waiting)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in waiting[node] if d in waiting)
    return [*path[seen[node]:], node]
