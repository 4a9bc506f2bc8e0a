"""Shared fixtures: Pulumi mocks and config for running the program in-process.

As in Pulumi's testing-unit-py example, mocks and config (with secret keys
marked) are set before the program is built; each run executes __main__.py
afresh for the stack it is given.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pytest
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.identity import RELEASE_TYPE  # noqa: E402
from model.stackfile import PROJECT, plain_config  # noqa: E402
from tests.support.standin_charts import build_charts_dir  # noqa: E402

SECRET_KEYS = (
    "keycloakAdminPassword", "keycloakClientSecret", "mariadbRootPassword",
    "mariadbPassword", "harborAdminPassword", "initialUserPassword",
)
# Secret values used by the unit tests; assertions check they never leak.
TEST_SECRETS = {key: f"unit-{key}-s3cr3t" for key in SECRET_KEYS}


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs, give Helm releases a deployed status, record everything."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == RELEASE_TYPE:
            outputs["status"] = {"status": "deployed", "revision": 1, "name": args.inputs.get("name"), "namespace": args.inputs.get("namespace")}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


@dataclass
class ProgramRun:
    """The program module after a run, and what the mocks saw."""

    module: ModuleType
    mocks: RecordingMocks
    stack: str
    config: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.mocks.resources if r.typ == typ]


@pytest.fixture(scope="session")
def standin_charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A charts folder with stand-in archives and a lock for every declared chart."""
    return build_charts_dir(tmp_path_factory.mktemp("charts"))


RunProgram = Callable[..., ProgramRun]


@pytest.fixture
def run_program(standin_charts: Path) -> RunProgram:
    """Run __main__.py under mocks for a stack file, with optional config changes.

    overrides: config values by short key laid over the stack file's;
    secrets: secret values by key (default: every key set).
    """

    def run(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, str] | None = None,
            plaintext: dict[str, str] | None = None, charts_dir: Path | None = None) -> ProgramRun:
        config = plain_config(ROOT / f"Pulumi.{stack}.yaml") if (ROOT / f"Pulumi.{stack}.yaml").exists() else {}
        config["chartsDir"] = str(charts_dir or standin_charts)
        config.update(overrides or {})
        secrets = TEST_SECRETS if secrets is None else secrets
        raw: dict[str, str] = {}
        for key, value in config.items():
            raw[f"{PROJECT}:{key}"] = value if isinstance(value, str) else _json(value)
        for key, value in {**secrets, **(plaintext or {})}.items():
            raw[f"{PROJECT}:{key}"] = value
        pulumi.runtime.set_all_config(raw, secret_keys=[f"{PROJECT}:{k}" for k in secrets])
        mocks = RecordingMocks()
        run.last_mocks = mocks  # type: ignore[attr-defined]
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
        spec = importlib.util.spec_from_file_location(f"astrago_program_{stack}", ROOT / "__main__.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # Registrations run on the event loop: let them finish so tests see
        # every resource the program registered.
        _sync_await(wait_for_rpcs())
        return ProgramRun(module=module, mocks=mocks, stack=stack, config=config)

    return run


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an `e2e` test (the lanes of `make test-fast` and `make test`)."""
    e2e = ROOT / "tests" / "e2e"
    for item in items:
        if Path(str(item.path)).is_relative_to(e2e):
            item.add_marker(pytest.mark.e2e)
