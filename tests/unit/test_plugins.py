"""The program names a missing provider plugin and the fix instead of letting the engine try a download."""

from __future__ import annotations

from pathlib import Path

from model.plugins import missing_plugins


def test_a_plugin_in_the_cache_is_found(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins" / "resource-astrago-hooks-v0.1.0" / "pulumi-resource-astrago-hooks"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("")
    assert missing_plugins({"PULUMI_HOME": str(tmp_path), "PATH": ""}, [("astrago-hooks", "0.1.0")]) == []


def test_a_plugin_on_path_is_found(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "pulumi-resource-astrago-hooks"
    binary.parent.mkdir()
    binary.write_text("")
    binary.chmod(0o755)
    assert missing_plugins({"PULUMI_HOME": str(tmp_path / "home"), "PATH": str(binary.parent)}, [("astrago-hooks", "0.1.0")]) == []


def test_a_missing_plugin_is_named_with_the_fix(tmp_path: Path) -> None:
    [problem] = missing_plugins({"PULUMI_HOME": str(tmp_path), "PATH": ""}, [("astrago-hooks", "0.1.0")])
    assert "astrago-hooks 0.1.0 is not in the plugin cache" in problem and str(tmp_path / "plugins") in problem
    assert "run `make setup`" in problem and "source toolchain/env.sh" in problem

