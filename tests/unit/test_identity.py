"""One home for the names: the URNs `--target` uses are the ones the program registers; no second spelling."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi.runtime.mocks import MockMonitor

from commands.targets import stack_enabled, target_urns
from model.catalog import load_catalog
from model.identity import (
    HOOK_TYPE,
    LOCAL_RELEASE_TYPE,
    PLATFORM_TYPE,
    RELEASE_TYPE,
    SECRET_SIG,
    SECRET_SIG_KEY,
    STACK_TYPE,
    TIER_TYPE,
    Description,
    is_secret,
    urn,
)
from tests.conftest import ROOT, RunProgram


class Registrations:
    """(type, name, parent URN) of every registration, keyed by the URN the mock monitor gave it.

    The mock monitor qualifies a type with its parent's last type only; the
    engine qualifies it with the parent's whole chain (without the stack),
    so the real URN is computed here from the parents, by the engine's rule.
    """

    def __init__(self) -> None:
        self.by_mock_urn: dict[str, tuple[str, str, str]] = {}

    def record(self, monitor: MockMonitor, parent: str, type_: str, name: str) -> str:
        mock_urn = ORIGINAL_MAKE_URN(monitor, parent, type_, name)
        self.by_mock_urn[mock_urn] = (type_, name, parent)
        return mock_urn

    def chain(self, mock_urn: str) -> tuple[str, ...]:
        if mock_urn.split("::")[2] == STACK_TYPE:
            return ()  # the stack (registered once per session) is no part of a URN's type chain
        type_, _, parent = self.by_mock_urn[mock_urn]
        if type_ == STACK_TYPE:
            return ()
        return (*(self.chain(parent) if parent else ()), type_)

    def engine_urns(self, stack: str, types: tuple[str, ...]) -> set[str]:
        found = set()
        for mock_urn, (type_, name, _) in self.by_mock_urn.items():
            if type_ in types:
                *parents, own = self.chain(mock_urn)
                found.add(urn(stack, tuple(parents), own, name))
        return found


ORIGINAL_MAKE_URN = MockMonitor.make_urn


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_every_target_urn_is_derived_from_what_the_program_registers(run_program: RunProgram, monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    registrations = Registrations()

    def make_urn(monitor: MockMonitor, parent: str, type_: str, name: str) -> str:
        return registrations.record(monitor, parent, type_, name)

    monkeypatch.setattr(MockMonitor, "make_urn", make_urn)
    run_program(stack)
    registered = registrations.engine_urns(stack, (RELEASE_TYPE, HOOK_TYPE))
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    enabled = stack_enabled(stack)
    assert registered and len(registered) >= len(enabled), registered
    by_tier: set[str] = set()
    for tier in catalog.tiers:
        if not any(r.tier == tier and r.name in enabled for r in catalog.releases):
            continue
        selected = set(target_urns(stack, tier, "", enabled))
        assert selected <= registered, sorted(selected - registered)
        by_tier |= selected
    assert by_tier == registered, "TIER= targets cover every release and hook, and nothing else"
    for name in sorted(enabled):
        [release_urn, *hooks] = target_urns(stack, "", name, enabled)
        assert release_urn in registered and release_urn.endswith(f"-{name}-release")
        assert set(hooks) <= registered


def test_the_description_is_parsed_by_the_code_that_writes_it(run_program: RunProgram) -> None:
    run = run_program("dev")
    releases = run.of_type(RELEASE_TYPE)
    assert releases
    for release in releases:
        described = Description.parse(release.inputs["description"])
        assert described is not None, release.inputs["description"]
        assert described.format() == release.inputs["description"]
        assert len(described.digest) == 64
    with_extra = Description("1.2.3", "a" * 64, "post-render patches sha256:0123")
    assert Description.parse(with_extra.format()) == with_extra
    assert Description.parse("Install complete") is None


def test_the_secret_marker_is_recognised() -> None:
    assert is_secret({SECRET_SIG_KEY: SECRET_SIG, "ciphertext": "x"})
    assert not is_secret({SECRET_SIG_KEY: "other"}) and not is_secret("[secret]")


# The identities that must be spelled in model/identity.py only (Go code and
# the toolchain's own files excepted: the provider declares its type itself).
SPELLED_ONCE = (RELEASE_TYPE, HOOK_TYPE, SECRET_SIG_KEY, LOCAL_RELEASE_TYPE, TIER_TYPE, PLATFORM_TYPE)


def test_no_python_module_spells_an_identity_again() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", ".tools", ".state") or relative == Path("model/identity.py"):
            continue
        text = path.read_text(errors="replace")
        found += [f"{relative}: {token}" for token in SPELLED_ONCE if token in text]
    assert found == [], "import these from model.identity instead:\n" + "\n".join(found)
