"""Offline bundles made from a charts folder synced from a real chart repository on 127.0.0.1, unpacked and refused."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from commands.bundle import SUMS, create, read_bundle, unpack
from commands.charts import sync
from commands.images import collect
from model.errors import InputError
from tests.chart_repo import build_repo, serve
from tests.integration.test_images import site_project

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every declared chart as a stand-in, synced from a served repository (stopped afterwards)."""
    scratch = tmp_path_factory.mktemp("bundle")
    declared = yaml.safe_load((ROOT / "charts" / "external.yaml").read_text())["charts"]
    (scratch / "repo").mkdir()
    (scratch / "charts").mkdir()
    with serve(scratch / "repo") as repo:
        build_repo(scratch / "repo", [(c["name"], c["version"]) for c in declared], repo.url)
        for chart in declared:
            chart["repository"] = repo.url
        (scratch / "charts" / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        sync(scratch / "charts", None, 60)
    return scratch / "charts"


@pytest.fixture(scope="module")
def bundle(charts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("made") / "stage.tar.gz"
    started = time.monotonic()
    create("stage", out, ROOT, str(charts))
    print(f"\nbundle create (stage, {len(list((charts / 'external').iterdir()))} stand-in charts): {time.monotonic() - started:.2f}s, {out.stat().st_size} bytes")
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _tree(folder: Path) -> list[str]:
    """Every path under folder (files and folders): what a refused unpack must leave as it was."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_the_bundle_holds_charts_images_stack_file_and_tool_pins_under_checksums(bundle: Path, charts: Path) -> None:
    with tarfile.open(bundle, "r:gz") as archive:
        members = archive.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names), "entries in sorted order"
        assert all(m.isfile() and m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644 and not m.uname for m in members)
    files = read_bundle(bundle)
    charts_files = {f"charts/{k}": v for k, v in _files(charts).items()}
    assert {k: v for k, v in files.items() if k.startswith("charts/")} == charts_files, "every declared archive, external.yaml and the lock, unchanged"
    assert files["Pulumi.stage.yaml"] == (ROOT / "Pulumi.stage.yaml").read_bytes()
    for pin in ("toolchain/tools.toml", "requirements.txt", "constraints.txt"):
        assert files[pin] == (ROOT / pin).read_bytes(), pin
    assert files["images/stage.lock.yaml"].decode() == collect("stage", ROOT, str(charts)).to_yaml()
    sums = {path: digest for digest, path in (line.split("  ", 1) for line in files[SUMS].decode().splitlines())}
    assert set(sums) == set(files) - {SUMS}
    assert all(hashlib.sha256(files[path]).hexdigest() == digest for path, digest in sums.items())


def test_the_same_inputs_give_a_byte_identical_bundle(bundle: Path, charts: Path, tmp_path: Path) -> None:
    later = time.time() + 3600
    for path in charts.rglob("*"):
        os.utime(path, (later, later))  # file times are not part of a bundle
    again = create("stage", tmp_path / "again.tar.gz", ROOT, str(charts))
    assert again.path.read_bytes() == bundle.read_bytes()
    assert again.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()


def test_the_commands_make_and_unpack_a_bundle_that_verifies(charts: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.tar.gz"
    made = subprocess.run([PYTHON, "-m", "commands.bundle", "create", "--stack", "stage", "--out", str(out), "--charts-dir", str(charts)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() in made.stdout, "the bundle's sha256 is printed for comparison at the site"
    started = time.monotonic()
    unpacked = subprocess.run([PYTHON, "-m", "commands.bundle", "unpack", "--bundle", str(out), "--into", str(tmp_path / "site")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    print(f"\nbundle unpack (CLI, with interpreter start): {time.monotonic() - started:.2f}s")
    assert unpacked.returncode == 0, unpacked.stderr
    assert {k: v for k, v in _files(tmp_path / "site").items() if k.startswith("charts/")} == {f"charts/{k}": v for k, v in _files(charts).items()}
    verify = subprocess.run([PYTHON, "-m", "commands.charts", "verify", "--charts-dir", str(tmp_path / "site" / "charts")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert "8 of 8 declared charts verified" in verify.stdout, verify.stdout
    check = subprocess.run(["sha256sum", "--check", "--strict", SUMS], cwd=tmp_path / "site", capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, f"the manifest is in sha256sum format:\n{check.stdout}{check.stderr}"


def test_unpack_lays_out_the_bundle_and_the_stack_resolves_from_it(bundle: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    written = unpack(bundle, tmp_path / "site")
    print(f"\nbundle unpack (in-process): {time.monotonic() - started:.3f}s")
    assert set(written) == set(_files(tmp_path / "site"))
    lock = collect("stage", ROOT, str(tmp_path / "site" / "charts"))
    assert lock.to_yaml() == (tmp_path / "site" / "images" / "stage.lock.yaml").read_text(), "the unpacked charts give the bundled images lock"


def test_a_stack_that_inherits_carries_its_parent_stack_file(charts: Path, tmp_path: Path) -> None:
    project = site_project(tmp_path / "project")
    created = create("site", tmp_path / "site.tar.gz", project, str(charts))
    assert {"Pulumi.site.yaml", "Pulumi.stage.yaml", "images/site.lock.yaml"} <= set(created.files)
    files = read_bundle(created.path)
    assert files["Pulumi.stage.yaml"] == (ROOT / "Pulumi.stage.yaml").read_bytes()
    assert created.image_warnings and all(line.startswith("warning: ") for line in created.image_warnings)


@pytest.mark.parametrize("damage", ["altered archive", "missing declaration", "extra archive"])
def test_an_unverified_chart_set_is_not_bundled(damage: str, charts: Path, tmp_path: Path) -> None:
    copy = tmp_path / "charts"
    shutil.copytree(charts, copy)
    if damage == "altered archive":
        archive = next((copy / "external").glob("flux2-*.tgz"))
        archive.write_bytes(archive.read_bytes() + b"\0")
        expected = "flux2"
    elif damage == "missing declaration":
        (copy / "external.yaml").unlink()
        expected = "external.yaml"
    else:
        (copy / "external" / "stray-1.0.0.tgz").write_bytes(b"not declared")
        expected = "stray-1.0.0.tgz"
    out = tmp_path / "refused.tar.gz"
    with pytest.raises(InputError) as refused:
        create("stage", out, ROOT, str(copy))
    assert expected in str(refused.value), str(refused.value)
    assert not out.exists() and not list(tmp_path.glob(".*tmp")), "nothing written"


# --- refusals ---------------------------------------------------------------------

def _rewrite(bundle: Path, out: Path, change: str) -> str:
    """A copy of the bundle with one kind of damage; returns the entry the refusal must name."""
    with tarfile.open(bundle, "r:gz") as archive:
        entries = [(m, archive.extractfile(m).read()) for m in archive.getmembers()]  # type: ignore[union-attr]
    files = {m.name: data for m, data in entries}
    named = ""
    extra: list[tuple[tarfile.TarInfo, bytes]] = []
    if change == "tampered file":
        named = next(n for n in files if n.startswith("charts/external/keycloak"))
        files[named] = files[named][:-1] + bytes([files[named][-1] ^ 1])
    elif change == "extra file":
        named = "charts/external/unlisted-1.0.0.tgz"
        files[named] = b"a file added after the bundle was made"
    elif change == "missing file":
        named = "charts/versions.lock"
        del files[named]
    elif change == "missing SHA256SUMS":
        named = SUMS
        del files[SUMS]
    elif change in ("parent traversal", "absolute path"):
        named = "../escaped.txt" if change == "parent traversal" else f"/tmp/astrago-escaped-{os.getpid()}.txt"
        data = b"outside the target"
        # Listed in SHA256SUMS, so only the path itself is wrong.
        files[SUMS] += f"{hashlib.sha256(data).hexdigest()}  {named}\n".encode()
        info = tarfile.TarInfo(named)
        info.size = len(data)
        extra.append((info, data))
    elif change == "symlink":
        named = "charts/external/link.tgz"
        info = tarfile.TarInfo(named)
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        extra.append((info, b""))
    with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return named


REFUSALS = ["tampered file", "extra file", "missing file", "missing SHA256SUMS", "parent traversal", "absolute path", "symlink"]


@pytest.mark.parametrize("change", REFUSALS)
def test_a_damaged_bundle_is_refused_and_the_target_stays_untouched(change: str, bundle: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "in" / "damaged.tar.gz"
    damaged.parent.mkdir()
    named = _rewrite(bundle, damaged, change)
    site = tmp_path / "site"
    target = site / "unpacked"
    target.mkdir(parents=True)
    (site / "neighbour.txt").write_text("left alone")
    before = _tree(tmp_path)
    with pytest.raises(InputError) as refused:
        unpack(damaged, target)
    message = str(refused.value)
    assert named in message and str(damaged) in message, message
    assert "again" in message, f"the message says what to do: {message}"
    assert _tree(tmp_path) == before, "a refused bundle writes nothing, not even a staging folder"
    assert not Path(f"/tmp/astrago-escaped-{os.getpid()}.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_the_command_refuses_with_the_file_and_the_fix_and_creates_no_target(bundle: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.tar.gz"
    named = _rewrite(bundle, damaged, "tampered file")
    result = subprocess.run([PYTHON, "-m", "commands.bundle", "unpack", "--bundle", str(damaged), "--into", str(tmp_path / "new")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert named in result.stderr and "nothing was written" in result.stderr and "copy the bundle again" in result.stderr, result.stderr
    assert not (tmp_path / "new").exists()


def test_unpack_never_writes_into_a_folder_that_holds_files(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        unpack(bundle, tmp_path / "site")
    assert _files(tmp_path / "site") == {"keep.txt": b"mine"}
