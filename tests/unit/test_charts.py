"""Chart digests and lock verification."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from model.charts import chart_digest, verify_lock
from model.errors import InputError
from tests.support.standin_charts import build_charts_dir

ROOT = Path(__file__).resolve().parents[2]


def test_editing_a_template_changes_the_digest(tmp_path: Path) -> None:
    chart = tmp_path / "astrago"
    shutil.copytree(ROOT / "charts/own/astrago", chart)
    before = chart_digest(chart)
    template = chart / "templates/config.yaml"
    template.write_text(template.read_text() + "# edited without a version bump\n")
    assert chart_digest(chart) != before


def test_digest_is_stable_and_ignores_location(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "charts/own/astrago", tmp_path / "copy")
    assert chart_digest(tmp_path / "copy") == chart_digest(ROOT / "charts/own/astrago")


def test_a_synced_folder_verifies(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    assert set(verify_lock(charts)) == {"csi-driver-nfs", "gpu-operator", "kube-prometheus-stack", "loki-stack", "flux2", "keycloak", "harbor", "mpi-operator"}


def test_tampered_archive_names_both_digests(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    archive = charts / "external/flux2-2.16.4.tgz"
    expected = yaml.safe_load((charts / "versions.lock").read_text())["charts"][4]["sha256"]
    archive.write_bytes(archive.read_bytes() + b"x")
    with pytest.raises(InputError) as caught:
        verify_lock(charts)
    assert "flux2 2.16.4" in str(caught.value) and expected in str(caught.value) and "altered" in str(caught.value)


def test_extra_unlocked_archive_is_refused(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    (charts / "external/evil-1.0.0.tgz").write_bytes(b"not locked")
    with pytest.raises(InputError, match=re.escape("evil-1.0.0.tgz is not in")):
        verify_lock(charts)


def test_version_differing_from_declaration_is_refused(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    declared = charts / "external.yaml"
    declared.write_text(declared.read_text().replace("version: 61.9.0", "version: 62.0.0"))
    with pytest.raises(InputError, match=re.escape("asks for 62.0.0, the lock holds 61.9.0")):
        verify_lock(charts)


def test_lock_entry_without_declaration_is_refused(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    declared = yaml.safe_load((charts / "external.yaml").read_text())
    declared["charts"] = [c for c in declared["charts"] if c["name"] != "harbor"]
    (charts / "external.yaml").write_text(yaml.safe_dump(declared))
    with pytest.raises(InputError, match=re.escape("'harbor' is locked but not declared")):
        verify_lock(charts)


def test_hand_edited_lock_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    (charts / "versions.lock").write_text("charts: [\n")
    with pytest.raises(InputError, match=re.escape("versions.lock line 2: not valid YAML")):
        verify_lock(charts)


def test_missing_archive_only_matters_when_required(tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path)
    (charts / "external/harbor-1.14.2.tgz").unlink()
    verify_lock(charts, required={"loki-stack"})
    with pytest.raises(InputError, match=r"harbor 1.14.2: archive .* is missing"):
        verify_lock(charts, required={"harbor"})
