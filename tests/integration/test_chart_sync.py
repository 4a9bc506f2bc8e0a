"""charts-sync and charts-verify against a real chart repository and a real OCI registry on 127.0.0.1, pulled by the pinned helm.

Besides the happy paths: repositories that misbehave (500, slow, trickle,
truncated, wrong or all-zero or missing digest, redirect loop, huge answer),
each refused with its message and the charts folder left exactly as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from commands.charts import sync
from model.charts import LOCK_FILE, load_lock, verify_lock
from model.errors import InputError
from tests.support.chart_repo import ChartRepo, build_repo, push_oci, require_helm, serve, write_standin
from tests.support.registry import require_crane, serve_registry

CHARTS = [("loki-stack", "2.9.10"), ("flux2", "2.16.4"), ("csi-driver-nfs", "v4.9.0")]


ROOT = Path(__file__).resolve().parents[2]
MISBEHAVE: dict[str, str] = {}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[ChartRepo]:
    folder = tmp_path / "repo"
    folder.mkdir()
    MISBEHAVE.clear()
    with serve(folder, misbehave=MISBEHAVE) as served:
        build_repo(folder, [*CHARTS, ("loki-stack", "2.9.11")], served.url)
        yield served
    MISBEHAVE.clear()


def _declare(charts: Path, repo_url: str, items: list[tuple[str, str]] = CHARTS, extra: dict | None = None) -> Path:
    charts.mkdir(parents=True, exist_ok=True)
    declared = [{"name": n, "repository": repo_url, "version": v, **(extra or {})} for n, v in items]
    (charts / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
    return charts


def _snapshot(charts: Path) -> dict[str, bytes]:
    """Every file and folder of the charts folder (a leftover staging folder counts)."""
    return {p.relative_to(charts).as_posix(): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(charts.rglob("*"))}


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
    with pytest.raises(InputError, match=r"chart loki-stack 2\.9\.10 from http://127\.0\.0\.1:\d+: index: helm could not fetch it: .*connection refused"):
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
    with pytest.raises(InputError, match=r"the index of http://127\.0\.0\.1:[0-9]+ publishes 0000"):
        sync(charts, None, 60)
    assert not (charts / LOCK_FILE).exists()
    assert not list(charts.rglob("*.tgz")), "nothing of the refused download is left"


def test_malformed_index_is_refused(repo: ChartRepo, tmp_path: Path) -> None:
    (repo.folder / "index.yaml").write_text("entries: [unclosed\n")
    charts = _declare(tmp_path / "charts", repo.url)
    before = _snapshot(charts)
    with pytest.raises(InputError, match="helm could not fetch it"):
        sync(charts, None, 60)
    assert _snapshot(charts) == before


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
        with pytest.raises(InputError, match="401"):
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


# --- OCI registries -----------------------------------------------------------------

def test_oci_and_http_charts_sync_together_with_the_manifest_digest_recorded(repo: ChartRepo, tmp_path: Path) -> None:
    with serve_registry(tmp_path / "oci") as registry:
        oci = push_oci([("keycloak", "17.3.5")], registry.host, "bitnamicharts", tmp_path)
        charts = _declare(tmp_path / "charts", repo.url, [("flux2", "2.16.4")])
        declared = yaml.safe_load((charts / "external.yaml").read_text())
        declared["charts"].append({"name": "keycloak", "repository": oci, "version": "17.3.5", "plainHttp": True})
        (charts / "external.yaml").write_text(yaml.safe_dump(declared))
        assert sync(charts, None, 60) == ["flux2", "keycloak"]
        manifest = subprocess.run([str(require_crane()), "digest", f"{registry.host}/bitnamicharts/keycloak:17.3.5"],
                                  capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    lock = verify_lock(charts)
    assert lock["keycloak"].repository_digest == manifest and manifest.startswith("sha256:")
    assert lock["keycloak"].source == oci and lock["keycloak"].archive == "external/keycloak-17.3.5.tgz"
    with tarfile.open(charts / "external/keycloak-17.3.5.tgz") as archive:
        assert "keycloak/Chart.yaml" in archive.getnames()


def test_an_oci_chart_that_is_not_there_is_named(tmp_path: Path) -> None:
    with serve_registry(tmp_path / "oci") as registry:
        charts = _declare(tmp_path / "charts", f"oci://{registry.host}/bitnamicharts", [("keycloak", "17.3.5")], {"plainHttp": True})
        before = _snapshot(charts)
        with pytest.raises(InputError, match=r"chart keycloak 17\.3\.5 from oci://127\.0\.0\.1:\d+/bitnamicharts: helm could not fetch it: .*not found"):
            sync(charts, None, 60)
    assert _snapshot(charts) == before


# --- provenance ---------------------------------------------------------------------

def _signing_keyring(folder: Path) -> tuple[Path, Path]:
    """A throwaway GnuPG key: (secret keyring for `helm package --sign`, public keyring for --verify)."""
    folder.mkdir(parents=True, exist_ok=True)
    # gpg-agent's socket lives in the home folder and a Unix socket path has at most 107 bytes:
    # pytest's folders (per xdist worker, per test) are longer than that, so the home is short.
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    try:
        made = subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "Chart Publisher <charts@example.invalid>", "rsa2048", "sign", "never"],
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, f"gpg could not make the test key: {made.stderr}"
        secret, public = folder / "secring.gpg", folder / "pubring.gpg"
        secret.write_bytes(subprocess.run([*gpg, "--export-secret-keys"], capture_output=True, timeout=60, check=True).stdout)
        public.write_bytes(subprocess.run([*gpg, "--export"], capture_output=True, timeout=60, check=True).stdout)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, timeout=30)
        shutil.rmtree(home, ignore_errors=True)
    return secret, public


def _signed_package(folder: Path, name: str, version: str, secret: Path) -> Path:
    chart = write_standin(folder / "src", name, version)
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(require_helm()), "package", str(chart), "-d", str(folder), "--sign", "--key", "Chart Publisher", "--keyring", str(secret)],
                   capture_output=True, text=True, timeout=60, check=True)
    return folder / f"{name}-{version}.tgz"


def test_signed_charts_are_verified_over_http_and_oci(tmp_path: Path) -> None:
    secret, public = _signing_keyring(tmp_path / "keys")
    other_secret, _ = _signing_keyring(tmp_path / "other-keys")
    (tmp_path / "repo").mkdir()
    _signed_package(tmp_path / "repo", "harbor", "1.14.2", secret)
    forged = _signed_package(tmp_path / "forged", "flux2", "2.16.4", other_secret)
    shutil.copy(forged, tmp_path / "repo")
    shutil.copy(f"{forged}.prov", tmp_path / "repo")
    with serve(tmp_path / "repo") as http, serve_registry(tmp_path / "oci") as registry:
        from tests.support.chart_repo import index as index_repo

        index_repo(tmp_path / "repo", http.url)
        oci_archive = _signed_package(tmp_path / "oci-src", "keycloak", "17.3.5", secret)
        subprocess.run([str(require_helm()), "push", str(oci_archive), f"oci://{registry.host}/bitnamicharts", "--plain-http"],
                       capture_output=True, text=True, timeout=60, check=True)
        charts = tmp_path / "charts"
        charts.mkdir()
        shutil.copy(public, charts / "publisher.gpg")
        signed = {"signed": True, "keyring": "publisher.gpg"}
        declared = [{"name": "harbor", "repository": http.url, "version": "1.14.2", **signed},
                    {"name": "keycloak", "repository": f"oci://{registry.host}/bitnamicharts", "version": "17.3.5", "plainHttp": True, **signed}]
        (charts / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        assert sync(charts, None, 60) == ["harbor", "keycloak"]
        lock = load_lock(charts)
        assert all(lock[n].provenance.startswith("Chart Publisher <charts@example.invalid> (key ") for n in ("harbor", "keycloak")), lock
        # A chart signed by someone else is refused and changes nothing.
        declared.append({"name": "flux2", "repository": http.url, "version": "2.16.4", **signed})
        (charts / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        before = _snapshot(charts)
        with pytest.raises(InputError, match=r"chart flux2 2\.16\.4 from http://127\.0\.0\.1:\d+: helm could not fetch it: .*(unknown entity|signature|key)"):
            sync(charts, None, 60)
        assert _snapshot(charts) == before


def test_a_signed_chart_without_a_keyring_is_refused_before_any_fetch(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url, [("flux2", "2.16.4")], {"signed": True})
    with pytest.raises(InputError, match="signed: true needs keyring"):
        sync(charts, None, 60)
    assert not (charts / LOCK_FILE).exists()


# --- a misbehaving repository: refused, the charts folder unchanged --------------

def _index_entry(repo: ChartRepo, name: str, version: str, raw_digest: str | None) -> None:
    """Write the index with one entry's digest replaced by raw YAML text (None: no digest at all)."""
    index = yaml.safe_load((repo.folder / "index.yaml").read_text())
    for entry in index["entries"][name]:
        if entry["version"] == version:
            entry["digest"] = "@@DIGEST@@"
            if raw_digest is None:
                del entry["digest"]
    (repo.folder / "index.yaml").write_text(yaml.safe_dump(index).replace("'@@DIGEST@@'", raw_digest or ""))


MISBEHAVIOURS = {
    # case: (path -> mode, deadline, message)
    "index 500": ({"/index.yaml": "500"}, 30, r"index: helm could not fetch it: .*500"),
    "archive 500": ({"/flux2-2.16.4.tgz": "500"}, 30, r"chart flux2 2\.16\.4 .*helm could not fetch it: .*500"),
    "slow archive": ({"/flux2-2.16.4.tgz": "slow"}, 8, r"did not answer within the time limit"),
    "trickling archive": ({"/flux2-2.16.4.tgz": "trickle"}, 8, r"did not answer within the time limit"),
    "truncated archive": ({"/flux2-2.16.4.tgz": "truncated"}, 30, r"chart flux2 2\.16\.4 .*(EOF|helm could not fetch it|damaged or truncated|sha256)"),
    "redirect loop": ({"/index.yaml": "redirect"}, 30, r"index: helm could not fetch it: .*redirect"),
    "huge archive": ({"/flux2-2.16.4.tgz": "huge"}, 60, r"(larger than 67108864 bytes|sha256 .* publishes)"),
}


@pytest.mark.parametrize("case", sorted(MISBEHAVIOURS))
def test_a_misbehaving_repository_is_refused_and_changes_nothing(repo: ChartRepo, tmp_path: Path, case: str) -> None:
    modes, deadline, message = MISBEHAVIOURS[case]
    charts = _declare(tmp_path / "charts", repo.url, [("loki-stack", "2.9.10"), ("flux2", "2.16.4")])
    before = _snapshot(charts)
    MISBEHAVE.update(modes)
    started = time.monotonic()
    with pytest.raises(InputError, match=message):
        sync(charts, None, deadline)
    assert time.monotonic() - started < deadline + 25, "the deadline bounds the whole sync, downloads included"
    assert _snapshot(charts) == before, "no archive, no lock, no staging folder"


def test_an_all_zero_digest_is_a_digest_not_the_integer_zero(repo: ChartRepo, tmp_path: Path) -> None:
    _index_entry(repo, "flux2", "2.16.4", "0" * 64)  # unquoted: YAML 1.1 reads it as an octal 0
    charts = _declare(tmp_path / "charts", repo.url, [("flux2", "2.16.4")])
    before = _snapshot(charts)
    with pytest.raises(InputError, match=r"helm could not fetch it|publishes 0{64}"):
        sync(charts, None, 30)
    assert _snapshot(charts) == before


def test_an_index_entry_without_a_digest_is_refused_unless_declared(repo: ChartRepo, tmp_path: Path) -> None:
    _index_entry(repo, "flux2", "2.16.4", None)
    charts = _declare(tmp_path / "charts", repo.url, [("flux2", "2.16.4")])
    before = _snapshot(charts)
    with pytest.raises(InputError, match="publishes no digest for it"):
        sync(charts, None, 30)
    assert _snapshot(charts) == before
    _declare(charts, repo.url, [("flux2", "2.16.4")], {"allowUnpublishedDigest": True})
    warnings: list[str] = []
    assert sync(charts, None, 30, warn=warnings.append) == ["flux2"]
    assert len(warnings) == 1 and "publishes no digest" in warnings[0]
    assert load_lock(charts)["flux2"].repository_digest == ""


def test_make_charts_sync_stops_at_its_deadline_and_on_sigterm_leaving_nothing(repo: ChartRepo, tmp_path: Path) -> None:
    charts = _declare(tmp_path / "charts", repo.url, [("flux2", "2.16.4")])
    before = _snapshot(charts)
    MISBEHAVE["/flux2-2.16.4.tgz"] = "trickle"
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "commands.charts", "sync", "--charts-dir", str(charts)]
    started = time.monotonic()
    done = subprocess.run([*command, "--deadline", "6"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "did not answer within the time limit" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert time.monotonic() - started < 40
    assert _snapshot(charts) == before
    process = subprocess.Popen([*command, "--deadline", "100"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert _snapshot(charts) == before, "no .sync-* folder left behind"
