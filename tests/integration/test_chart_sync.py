"""charts-sync and charts-verify against a real chart repository on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from commands.charts import sync
from model.charts import LOCK_FILE, load_lock, verify_lock
from model.errors import InputError
from tests.chart_repo import ChartRepo, build_repo, serve

CHARTS = [("loki-stack", "2.9.10"), ("flux2", "2.16.4"), ("csi-driver-nfs", "v4.9.0")]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[ChartRepo]:
    folder = tmp_path / "repo"
    folder.mkdir()
    with serve(folder) as served:
        build_repo(folder, [*CHARTS, ("loki-stack", "2.9.11")], served.url)
        yield served


def _declare(charts: Path, repo_url: str, items: list[tuple[str, str]] = CHARTS, extra: dict | None = None) -> Path:
    charts.mkdir(parents=True, exist_ok=True)
    declared = [{"name": n, "repository": repo_url, "version": v, **(extra or {})} for n, v in items]
    (charts / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
    return charts


def _snapshot(charts: Path) -> dict[str, bytes]:
    return {p.relative_to(charts).as_posix(): p.read_bytes() for p in sorted(charts.rglob("*")) if p.is_file()}


def test_sync_fetches_locks_and_verifies(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url)
    assert sync(charts, None, 60) == ["csi-driver-nfs", "flux2", "loki-stack"]
    lock = verify_lock(charts)
    index = yaml.safe_load((repo.folder / "index.yaml").read_text())
    published = {e["name"]: e["digest"] for entries in index["entries"].values() for e in entries if e["version"] in ("2.9.10", "2.16.4", "v4.9.0")}
    for name, entry in lock.items():
        assert entry.repository_digest == published[name] == entry.sha256, f"{name}: lock and repository disagree"
        assert entry.source == repo.url and entry.fetched


def test_second_sync_fetches_nothing(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url)
    sync(charts, None, 60)
    before = _snapshot(charts)
    assert sync(charts, None, 60) == []
    assert _snapshot(charts) == before


def test_a_version_bump_fetches_only_that_chart(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url)
    sync(charts, None, 60)
    _declare(charts, repo.url, [("loki-stack", "2.9.11"), ("flux2", "2.16.4"), ("csi-driver-nfs", "v4.9.0")])
    assert sync(charts, None, 60) == ["loki-stack"]
    assert not (charts / "external/loki-stack-2.9.10.tgz").exists(), "the old archive is removed"
    assert load_lock(charts)["loki-stack"].version == "2.9.11"
    verify_lock(charts)


def test_refresh_refetches_named_charts(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url)
    sync(charts, None, 60)
    assert sync(charts, {"flux2"}, 60) == ["flux2"]
    assert sync(charts, set(), 60) == ["csi-driver-nfs", "flux2", "loki-stack"]


def test_unreachable_repository_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    with serve(folder) as served:
        url = served.url
    charts = _declare(tmp_path / "charts", url)
    before = _snapshot(charts)
    with pytest.raises(InputError, match="unreachable after"):
        sync(charts, None, 20)
    assert _snapshot(charts) == before, "no partial archive, no lock"


def test_missing_version_lists_what_the_index_has(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url, [("loki-stack", "9.9.9")])
    with pytest.raises(InputError) as caught:
        sync(charts, None, 60)
    assert "version 9.9.9 is not in the index" in str(caught.value) and "2.9.11" in str(caught.value)
    assert not (charts / LOCK_FILE).exists()


def test_unknown_chart_is_named(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url, [("grafana", "1.0.0")])
    with pytest.raises(InputError, match="chart grafana: not in the index"):
        sync(charts, None, 60)


def test_repository_digest_mismatch_is_refused(repo: ChartRepo, tmp_path: Path) -> None:
    index = repo.folder / "index.yaml"
    data = yaml.safe_load(index.read_text())
    data["entries"]["flux2"][0]["digest"] = "0" * 64
    index.write_text(yaml.safe_dump(data))
    charts = _declare(tmp_path / "charts", repo.url)
    with pytest.raises(InputError, match="the repository's index publishes 0000"):
        sync(charts, None, 60)
    assert not (charts / LOCK_FILE).exists()
    assert not list(charts.rglob("*.tgz")), "nothing of the refused download is left"


def test_malformed_index_is_refused(repo: ChartRepo, tmp_path: Path) -> None:
    (repo.folder / "index.yaml").write_text("entries: [unclosed\n")
    charts = _declare(tmp_path / "charts", repo.url)
    with pytest.raises(InputError, match="the index is not valid YAML"):
        sync(charts, None, 60)


def _publish(repo: ChartRepo, name: str, version: str, data: bytes) -> None:
    """Replace an archive and publish its digest, as a compromised or broken repository would."""
    (repo.folder / f"{name}-{version}.tgz").write_bytes(data)
    index = yaml.safe_load((repo.folder / "index.yaml").read_text())
    for entry in index["entries"][name]:
        if entry["version"] == version:
            entry["digest"] = hashlib.sha256(data).hexdigest()
    (repo.folder / "index.yaml").write_text(yaml.safe_dump(index))


def test_truncated_archive_is_refused(repo: ChartRepo, tmp_path: Path) -> None:
    # The index publishes the truncated file's digest, so only the archive check can catch it.
    _publish(repo, "flux2", "2.16.4", (repo.folder / "flux2-2.16.4.tgz").read_bytes()[:200])
    charts = _declare(tmp_path / "charts", repo.url)
    with pytest.raises(InputError, match="damaged or truncated"):
        sync(charts, None, 60)
    assert not (charts / LOCK_FILE).exists()


def test_path_traversal_inside_an_archive_is_refused(repo: ChartRepo, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in (("flux2/Chart.yaml", "apiVersion: v2\nname: flux2\nversion: 2.16.4\n"), ("flux2/../../evil.sh", "echo owned\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    _publish(repo, "flux2", "2.16.4", gzip.compress(buffer.getvalue()))
    charts = _declare(tmp_path / "charts", repo.url)
    with pytest.raises(InputError, match="points outside the chart folder"):
        sync(charts, None, 60)


def test_basic_auth_credentials_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    with serve(folder, username="robot", password="pa55") as private:
        build_repo(folder, [("flux2", "2.16.4")], private.url)
        auth = {"auth": {"usernameEnv": "CHARTS_USER", "passwordEnv": "CHARTS_PASSWORD"}}
        charts = _declare(tmp_path / "charts", private.url, [("flux2", "2.16.4")], auth)
        monkeypatch.setenv("CHARTS_USER", "robot")
        monkeypatch.setenv("CHARTS_PASSWORD", "wrong")
        with pytest.raises(InputError, match="answered 401"):
            sync(charts, None, 30)
        monkeypatch.setenv("CHARTS_PASSWORD", "pa55")
        assert sync(charts, None, 30) == ["flux2"]
        assert "pa55" not in (charts / LOCK_FILE).read_text()


def test_tampering_after_sync_is_caught_by_verify(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url)
    sync(charts, None, 60)
    with (charts / "external/flux2-2.16.4.tgz").open("ab") as archive:
        archive.write(b"\0")
    with pytest.raises(InputError, match=r"flux2 2\.16\.4: .* the archive was altered"):
        verify_lock(charts)
