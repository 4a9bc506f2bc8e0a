"""import-helmfile and parity on a Helmfile site in the team's layout (tests/helmfile_site), with the pinned Helmfile and Helm.

The project is copied to a temporary folder, so the stack files the import
writes never touch the repository. Helmfile renders the site with the
stand-in charts; parity compares that with the imported stack's rendering.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cli.process import TOOLS
from commands import import_helmfile, parity
from tests.support.standin_charts import build_realistic_charts_dir

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "tests" / "helmfile_site"
PASSWORDS = ("kc-admin-Xq93", "kc-client-7fPz2w", "maria-root-Lk28", "maria-user-Hd51", "harbor-admin-Vn44", "astrago-init-Qa77")
SECRET_KEYS = ("keycloakAdminPassword", "keycloakClientSecret", "mariadbRootPassword", "mariadbPassword", "harborAdminPassword",
               "initialUserPassword")


@pytest.fixture(scope="module")
def helmfile_built() -> None:
    """The pinned Helmfile: a missing one is a failure here (it is built on first use by the make target, not by tests)."""
    binary = TOOLS / "helmfile"
    assert binary.is_file(), f"{binary} is missing: run `python3 toolchain/build_tools.py helmfile` (what `make import-helmfile` runs first)"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helmfile_built: None) -> Iterator[Path]:
    """A copy of the project's data (catalog, values, charts, stack files) and a charts folder of stand-ins; the site's env set."""
    target = tmp_path / "project"
    for folder in ("catalog", "values", "charts"):
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("external", "versions.lock"))
    (target / "toolchain").mkdir()
    shutil.copy(ROOT / "toolchain" / "tools.toml", target / "toolchain" / "tools.toml")
    shutil.copy(ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    charts = build_realistic_charts_dir(tmp_path / "charts", ROOT / "charts")
    monkeypatch.setenv("ASTRAGO_CHARTS", str(charts))
    monkeypatch.setenv("ASTRAGO_ROOT", str(target))
    monkeypatch.setenv("ASTRAGO_TEST_CHARTS", str(charts))
    # The post-render wrapper runs `python -m postrender` in the project copy, which holds data only.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    yield target


def run_import(project: Path, site: Path, env: str, stack: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = import_helmfile.main(["--dir", str(site), "--env", env, "--stack", stack, "--charts-dir", os.environ["ASTRAGO_TEST_CHARTS"],
                                 "--project", str(project)])
    out, err = capsys.readouterr()
    return code, out + err


def run_parity(project: Path, site: Path, env: str, stack: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = parity.main(["--dir", str(site), "--env", env, "--stack", stack, "--charts-dir", os.environ["ASTRAGO_TEST_CHARTS"],
                        "--project", str(project)])
    out, err = capsys.readouterr()
    return code, out + err


def test_import_then_parity_is_clean_for_every_release(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_import(project, SITE, "default", "site", capsys)
    assert code == 0, out
    assert "wrote: Pulumi.site.yaml" in out
    config = yaml.safe_load((project / "Pulumi.site.yaml").read_text())["config"]
    assert config["astrago-deploy:cluster"] == {"externalIP": "10.61.3.12", "domain": "dev.astrago.local", "storageClass": "astrago-nfs-csi",
                                                "nfs": {"server": "10.61.3.2", "path": "/kube_storage/dev"}}
    releases = config["astrago-deploy:releases"]
    # What the default environment sets beyond the project's values, and nothing else.
    assert releases["loki-stack"]["values"] == {"loki": {"config": {"table_manager": {"retention_period": "168h"}}, "persistence": {"size": "20Gi"}}}
    assert releases["astrago"]["values"]["core"] == {"image": {"tag": "core-dev-3f9a1c2"}}
    assert "gpu-operator" not in releases.get("gpu-operator", {}).get("values", {}), "the unread block is not carried over"
    assert "release gpu-operator: gpu-operator: did you mean operator?: chart gpu-operator v24.9.0 does not read it" in out
    for key in SECRET_KEYS:
        assert f"make secret STACK=site KEY={key} < <file>" in out, key
    assert "redis-timescaledb: not in the catalog" in out
    assert "['preuninstall'] `sleep 30` -> the catalog's hook(s) ['volumes-detach']" in out
    assert "differs after import" not in out
    code, out = run_parity(project, SITE, "default", "site", capsys)
    assert code == 0, out
    for name in ("nfs-provisioner", "gpu-operator", "prometheus", "keycloak", "harbor", "astrago", "flux", "mpi-operator"):
        assert f"# {name} (namespace " in out and "same objects and fields" in out, name
    assert "renders what Helmfile environment default renders" in out


def test_no_secret_is_written_and_a_second_import_changes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_import(project, SITE, "default", "site", capsys)
    assert code == 0, out
    for path in [p for p in project.rglob("*") if p.is_file()]:
        text = path.read_bytes()
        for password in PASSWORDS:
            assert password.encode() not in text, f"{password} written to {path}"
    for password in PASSWORDS:
        assert password not in out
    stack_file = project / "Pulumi.site.yaml"
    before, stamp = stack_file.read_bytes(), stack_file.stat().st_mtime_ns
    code, out = run_import(project, SITE, "default", "site", capsys)
    assert code == 0, out
    assert "unchanged: Pulumi.site.yaml" in out
    assert stack_file.read_bytes() == before and stack_file.stat().st_mtime_ns == stamp


def test_one_value_changed_in_helmfile_is_reported_as_that_field(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_import(project, SITE, "default", "site", capsys)
    assert code == 0, out
    changed = tmp_path / "site"
    shutil.copytree(SITE, changed)
    values = changed / "values" / "prometheus.yaml.gotmpl"
    values.write_text(values.read_text().replace("retention: 1y", "retention: 2y"))
    code, out = run_parity(project, changed, "default", "site", capsys)
    assert code == 1, out
    differing = [line for line in out.splitlines() if line.startswith("# ") and "same objects and fields" not in line]
    assert len(differing) == 1 and differing[0].startswith("# prometheus "), out
    objects = [line.strip() for line in out.splitlines() if line.startswith("  ~ ")]
    changes = [line.strip() for line in out.splitlines() if line.startswith("      ")]
    assert objects == ["~ monitoring.coreos.com/v1 Prometheus prometheus/prometheus-kube-prometheus-prometheus"], out
    # Helmfile's value -> the stack's: what an adopting `up` would change.
    assert changes == ['spec.retention: "2y" -> "1y"'], out


def test_several_environments_share_a_parent_stack(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_import(project, SITE, "default,acme", "helmfile", capsys)
    assert code == 0, out
    parent = yaml.safe_load((project / "Pulumi.helmfile.yaml").read_text())["config"]
    acme = yaml.safe_load((project / "Pulumi.acme.yaml").read_text())["config"]
    assert acme["astrago-deploy:inherits"] == "helmfile"
    assert acme["astrago-deploy:offline"] == {"registry": "192.168.50.5:5000", "fileServer": "http://192.168.50.5:8080"}
    assert acme["astrago-deploy:releases"]["harbor"] == {"enabled": False}
    assert parent["astrago-deploy:cluster"]["storageClass"] == "astrago-nfs-csi"
    assert "externalIP" not in parent["astrago-deploy:cluster"]
    for env in ("default", "acme"):
        code, out = run_parity(project, SITE, env, env, capsys)
        assert code == 0, out
