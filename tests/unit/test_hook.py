"""The hooks' resource matches the provider `make setup` builds: type, version, inputs."""

from __future__ import annotations

import tomllib

from components.hook import PROVIDER_VERSION
from model.identity import HOOK_TYPE
from tests.conftest import ROOT, RunProgram


def test_the_program_asks_for_the_provider_version_setup_registers() -> None:
    entry = tomllib.loads((ROOT / "toolchain" / "tools.toml").read_text())["module"]["hooks-provider"]
    assert entry["plugin"] == {"kind": "resource", "name": "astrago-hooks", "version": PROVIDER_VERSION}, entry["plugin"]
    assert entry["ldflags"] == f"-X main.version={PROVIDER_VERSION}", "the binary must report the version it is registered under"


def test_the_type_token_is_the_providers_only_type() -> None:
    main = (ROOT / "toolchain" / "go" / "hooks-provider" / "hooks.go").read_text()
    assert f'hookType = "{HOOK_TYPE}"' in main
    assert HOOK_TYPE.split(":")[0] == "astrago-hooks", "the package of the type picks the plugin"


def test_every_catalog_hook_is_a_resource_of_the_providers_type(run_program: RunProgram) -> None:
    hooks = run_program("dev").of_type(HOOK_TYPE)
    assert sorted(h.name for h in hooks) == ["astrago-infrastructure-gpu-operator-gpu-nodes", "astrago-infrastructure-nfs-provisioner-volumes-detach"]
    assert all(h.custom for h in hooks)


def test_a_pre_delete_hook_has_no_trigger_so_a_chart_change_never_replaces_it(run_program: RunProgram) -> None:
    run = run_program("dev")
    [delay] = [h for h in run.of_type(HOOK_TYPE) if h.inputs["when"] == "preDelete"]
    [check] = [h for h in run.of_type(HOOK_TYPE) if h.inputs["when"] == "preInstall"]
    assert "trigger" not in delay.inputs or delay.inputs["trigger"] is None, delay.inputs
    assert delay.inputs["delay_s"] == 30
    assert check.inputs["trigger"], f"{check.name}: the check must carry the chart digest"

