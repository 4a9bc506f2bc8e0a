"""Signed offline bundles with images: charts from a real chart repository, images from a real registry, both on 127.0.0.1.

The stage stack's images (as the realistic stand-ins of its charts render
them, under the upstream names the real charts use) are assembled here and pushed to a source
registry; a mirrors file maps every upstream registry (docker.io, quay.io,
ghcr.io, registry.k8s.io, nvcr.io, ...) to it. The bundle is then verified,
unpacked, refused when tampered with, and its images pushed to a site
registry that fails halfway once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from commands.charts import sync
from model.errors import InputError
from model.images_lock import load_images_lock
from model.signing import generate, load_private, sign
from offline.bundle import LAYOUT, SIGNATURE, SUMS, create, push_images, sums_text, unpack, write_tar
from offline.transfer import site_reference
from tests.support.chart_repo import build_realistic_repo, serve
from tests.support.registry import MULTI_ARCH, FlakyProxy, flaky_proxy, port_closed, publish_stack_images, serve_registry, tls_files

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


@dataclass
class World:
    charts: Path
    bundle: Path
    mirrors: Path
    key: Path
    public: Path
    other_public: Path
    source_port: int
    source_digests: dict[str, str]
    printed: list[str]
    reused: list[str]
    """What the second bundle (made with --reuse of the first) printed."""
    reuse_requests: list[str]
    """Every request the source registry got while the second bundle was made."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    scratch = tmp_path_factory.mktemp("bundle")
    declared = yaml.safe_load((ROOT / "charts" / "external.yaml").read_text())["charts"]
    (scratch / "repo").mkdir()
    (scratch / "charts").mkdir()
    generate(scratch / "keys" / "signing.key", scratch / "keys" / "signing.key.pub")
    generate(scratch / "keys" / "other.key", scratch / "keys" / "other.key.pub")
    # The source registry is reached through a mirror that wants credentials, from the environment.
    os.environ["MIRROR_USER"], os.environ["MIRROR_PASSWORD"] = "prep", "m1rror-pass"
    with serve(scratch / "repo") as repo, serve_registry(scratch / "source-registry") as source, \
            flaky_proxy(FlakyProxy(upstream=source.host, username="prep", password="m1rror-pass")) as mirror:
        build_realistic_repo(scratch / "repo", [c["name"] for c in declared], repo.url)
        for chart in declared:
            chart["repository"] = repo.url
        (scratch / "charts" / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        sync(scratch / "charts", None, 120)
        digests = publish_stack_images("stage", scratch / "charts", source.host, scratch / "mirrors.yaml")
        mirrors = yaml.safe_load((scratch / "mirrors.yaml").read_text())
        for entry in mirrors["mirrors"].values():
            entry.update(endpoint=entry["endpoint"].replace(source.host, mirror.host), usernameEnv="MIRROR_USER", passwordEnv="MIRROR_PASSWORD")
        (scratch / "mirrors-auth.yaml").write_text(yaml.safe_dump(mirrors))
        printed: list[str] = []
        create("stage", scratch / "made" / "stage.tar", ROOT, str(scratch / "charts"), signing_key=scratch / "keys" / "signing.key",
               mirrors=scratch / "mirrors-auth.yaml", say=printed.append)
        assert mirror.requests and not any("m1rror-pass" in r for r in mirror.requests)
        # A second bundle reusing the first one's images (the bundle file), through a proxy that records every request the source gets.
        with flaky_proxy(FlakyProxy(upstream=source.host)) as counting:
            mirrors = yaml.safe_load((scratch / "mirrors.yaml").read_text())
            for entry in mirrors["mirrors"].values():
                entry["endpoint"] = entry["endpoint"].replace(source.host, counting.host)
            (scratch / "mirrors-proxy.yaml").write_text(yaml.safe_dump(mirrors))
            reused: list[str] = []
            create("stage", scratch / "again" / "stage.tar", ROOT, str(scratch / "charts"), signing_key=scratch / "keys" / "signing.key",
                   mirrors=scratch / "mirrors-proxy.yaml", reuse=[scratch / "made" / "stage.tar"], say=reused.append)
        port = source.port
    for name in ("MIRROR_USER", "MIRROR_PASSWORD"):
        os.environ.pop(name, None)
    assert port_closed(port), "the source registry is stopped"
    yield World(scratch / "charts", scratch / "made" / "stage.tar", scratch / "mirrors.yaml", scratch / "keys" / "signing.key",
                scratch / "keys" / "signing.key.pub", scratch / "keys" / "other.key.pub", port, digests, printed, reused, counting.requests)


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_the_bundle_carries_every_image_by_digest_signed(world: World) -> None:
    with tarfile.open(world.bundle) as archive:
        names = archive.getnames()
    assert names[:2] == [SUMS, SIGNATURE], "the manifest and its signature come first"
    files = _members(world.bundle)
    (world.bundle.parent / "lock.yaml").write_bytes(files["images/stage.lock.yaml"])
    images = load_images_lock(world.bundle.parent / "lock.yaml").images
    assert {i.reference for i in images} == set(world.source_digests), "every image the stack renders"
    assert any(MULTI_ARCH in i.reference for i in images), "a multi-arch image is among them"
    for image in images:
        assert (image.digest or "").startswith("sha256:") and (image.size or 0) > 0 and image.platforms == ("linux/amd64",), image
        if MULTI_ARCH in image.reference:
            assert image.source_digest == world.source_digests[image.reference] != image.digest, "cut down to the site's platform"
        else:
            assert image.digest == world.source_digests[image.reference], "the source's own digest"
    index = yaml.safe_load(files[f"{LAYOUT}/index.json"])
    assert sorted(m["digest"] for m in index["manifests"]) == sorted(str(i.digest) for i in images)
    sums = {path: digest for digest, path in (line.split("  ", 1) for line in files[SUMS].decode().splitlines())}
    assert set(sums) == set(files) - {SUMS, SIGNATURE}
    assert all(hashlib.sha256(files[p]).hexdigest() == d for p, d in sums.items()), "SHA256SUMS covers every file, blobs included"


def test_a_second_bundle_reuses_the_first_ones_images_without_fetching_a_blob(world: World) -> None:
    lines = [line for line in world.reused if line.startswith("images:")]
    assert lines and all("reused from" in line for line in lines), world.reused
    assert world.reuse_requests and not [r for r in world.reuse_requests if "/blobs/" in r], "only tags resolved, no blob fetched"
    again = world.bundle.parent.parent / "again" / "stage.tar"
    assert again.read_bytes() == world.bundle.read_bytes(), "same inputs, same bytes"


def test_unpack_verifies_prints_the_sha256_and_lays_out_everything(world: World, tmp_path: Path) -> None:
    said: list[str] = []
    expected = hashlib.sha256(world.bundle.read_bytes()).hexdigest()
    written = unpack(world.bundle, tmp_path / "site", [world.other_public, world.public], expected_sha256=expected, say=said.append)
    assert said[0] == f"bundle: sha256 {expected}"
    assert SUMS in written and (tmp_path / "site" / LAYOUT / "index.json").is_file()
    verify = subprocess.run([PYTHON, "-m", "commands.charts", "verify", "--charts-dir", str(tmp_path / "site" / "charts")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr


def _rewrite(bundle: Path, out: Path, change: Callable[[dict[str, bytes | Path]], object], sums: bool, resign: Path | None) -> Path:
    """The bundle with a change; sums: SHA256SUMS rewritten to match it; resign: signed again with that key."""
    files: dict[str, bytes | Path] = dict(_members(bundle))
    change(files)
    if sums:
        files[SUMS] = sums_text(files).encode()
    if resign is not None:
        files[SIGNATURE] = sign(files[SUMS], load_private(resign), SUMS)  # type: ignore[arg-type]
    write_tar(files, out)
    return out


def _blob(files: dict[str, bytes | Path]) -> str:
    return max((p for p in files if p.startswith(f"{LAYOUT}/blobs/")), key=lambda p: len(files[p]))  # type: ignore[arg-type]


def _flip(files: dict[str, bytes | Path]) -> None:
    path = _blob(files)
    data = bytearray(files[path])  # type: ignore[arg-type]
    data[len(data) // 2] ^= 0x01
    files[path] = bytes(data)


def _extra_image(files: dict[str, bytes | Path]) -> None:
    """An image the lock does not list, added to the layout's index (as a careless or hostile packer would)."""
    import json

    index = json.loads(files[f"{LAYOUT}/index.json"])  # type: ignore[arg-type]
    extra = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:' + b"0" * 64 + b'","size":2},"layers":[]}'
    digest = hashlib.sha256(extra).hexdigest()
    files[f"{LAYOUT}/blobs/sha256/{digest}"] = extra
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{digest}", "size": len(extra),
                               "annotations": {"org.opencontainers.image.ref.name": "docker.io/evil/miner:latest"}})
    files[f"{LAYOUT}/index.json"] = json.dumps(index).encode()


def _restack(files: dict[str, bytes | Path]) -> None:
    files["Pulumi.stage.yaml"] = b"config: {}\n"


# case -> (change, rewrite SHA256SUMS, sign again with: None / "same" / "other" key, message)
REFUSALS: dict[str, tuple[Callable[[dict[str, bytes | Path]], object], bool, str | None, str]] = {
    "unsigned": (lambda f: f.pop(SIGNATURE), False, None, "is not signed"),
    "flipped byte in an image blob": (_flip, False, None, "the file was altered"),
    "missing blob": (lambda f: f.pop(_blob(f)), False, None, "which the bundle lacks"),
    "extra image in the layout, signed": (_extra_image, True, "same", "which the images lock does not list"),
    "file and its SHA256SUMS line rewritten": (_restack, True, None, "does not match the bundle's manifest"),
    "rewritten and signed by another key": (_restack, True, "other", "not a trusted key"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_tampered_bundle_is_refused_with_nothing_unpacked(world: World, tmp_path: Path, case: str) -> None:
    change, sums, resign, message = REFUSALS[case]
    signer = {"same": world.key, "other": world.key.with_name("other.key"), None: None}[resign]
    bad = _rewrite(world.bundle, tmp_path / "bad" / "stage.tar", change, sums, signer)
    before = _tree(tmp_path)
    with pytest.raises(InputError, match=message):
        unpack(bad, tmp_path / "site", [world.public])
    assert _tree(tmp_path) == before, "nothing unpacked, no staging folder left"


def test_a_wrong_key_or_sha256_is_refused_before_anything_is_written(world: World, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a trusted key of this site"):
        unpack(world.bundle, tmp_path / "site", [world.other_public])
    with pytest.raises(InputError, match="expected " + "0" * 64):
        unpack(world.bundle, tmp_path / "site", [world.public], expected_sha256="0" * 64)
    with pytest.raises(InputError, match="no trusted key given"):
        unpack(world.bundle, tmp_path / "site", [])
    assert _tree(tmp_path) == []


def test_make_unbundle_prints_the_sha256_and_refuses_a_wrong_one(world: World, tmp_path: Path) -> None:
    make = ["make", "--no-print-directory", "unbundle", f"BUNDLE={world.bundle}", f"INTO={tmp_path / 'site'}", f"TRUSTED_KEY={world.public}"]
    wrong = subprocess.run([*make, f"SHA256={'0' * 64}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    digest = hashlib.sha256(world.bundle.read_bytes()).hexdigest()
    assert wrong.returncode != 0 and f"bundle: sha256 {digest}" in wrong.stdout and "expected 000" in wrong.stderr, wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "site").exists()
    right = subprocess.run([*make, f"SHA256={digest}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert right.returncode == 0, right.stderr
    assert "signature by sha256:" in right.stdout and (tmp_path / "site" / "charts" / "versions.lock").is_file()


def test_images_push_resumes_after_a_registry_that_fails_halfway(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    unpack(world.bundle, site, [world.public])
    images = load_images_lock(site / "images" / "stage.lock.yaml").images
    monkeypatch.setenv("SITE_USER", "field")
    monkeypatch.setenv("SITE_PASSWORD", "s3cret-site")
    with serve_registry(tmp_path / "site-registry") as registry:
        flaky = FlakyProxy(upstream=registry.host, fail_after_uploads=2, username="field", password="s3cret-site")
        with flaky_proxy(flaky) as proxy:
            with pytest.raises(InputError, match=r"storage quota reached|503"):
                push_images(site, proxy.host, [], None, "SITE_USER", "SITE_PASSWORD", say=lambda line: None)
            assert 0 < flaky.uploads < len(images), "stopped halfway"
            done_first = flaky.uploads
            flaky.fail_after_uploads = None
            said: list[str] = []
            pushed, skipped = push_images(site, proxy.host, [], None, "SITE_USER", "SITE_PASSWORD", say=said.append)
            again = push_images(site, proxy.host, [], None, "SITE_USER", "SITE_PASSWORD", say=lambda line: None)
        assert skipped >= done_first - 1 and pushed + skipped == len(images), (pushed, skipped, done_first)
        assert again == (0, len(images)), "idempotent: a second push sends nothing"
        for image in images:
            target = site_reference(image, proxy.host).replace(proxy.host, registry.host)
            got = subprocess.run([str(ROOT / ".tools" / "bin" / "crane"), "digest", target], capture_output=True, text=True, timeout=60)
            assert got.stdout.strip() == image.digest, (target, got.stderr)
    assert not any("s3cret-site" in request for request in flaky.requests)


def test_a_push_without_the_credentials_is_refused(world: World, tmp_path: Path) -> None:
    site = tmp_path / "site"
    unpack(world.bundle, site, [world.public])
    with serve_registry(tmp_path / "site-registry") as registry, \
            flaky_proxy(FlakyProxy(upstream=registry.host, username="field", password="s3cret-site")) as proxy, \
            pytest.raises(InputError, match=r"UNAUTHORIZED|401|unauthorized|NO_SUCH"):
        push_images(site, proxy.host, [], None, "NO_SUCH_USER_VAR", "NO_SUCH_PASSWORD_VAR", say=lambda line: None)
    shutil.rmtree(site)


def test_make_bundle_key_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    make = ["make", "--no-print-directory", "bundle-key", f"OUT={tmp_path / 'keys' / 'site-a.key'}"]
    first = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and "key sha256:" in first.stdout, first.stderr
    assert (tmp_path / "keys" / "site-a.key").stat().st_mode & 0o777 == 0o600
    assert b"PUBLIC KEY" in (tmp_path / "keys" / "site-a.key.pub").read_bytes()
    before = (tmp_path / "keys" / "site-a.key").read_bytes()
    again = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "never overwritten" in again.stderr and "Traceback" not in again.stderr
    assert (tmp_path / "keys" / "site-a.key").read_bytes() == before


def test_images_push_to_a_tls_registry_trusts_the_site_ca_file_and_only_it(world: World, tmp_path: Path) -> None:
    site = tmp_path / "site"
    unpack(world.bundle, site, [world.public], say=lambda line: None)
    ca, cert, key = tls_files(tmp_path / "tls")
    with serve_registry(tmp_path / "site-registry") as registry, flaky_proxy(FlakyProxy(upstream=registry.host, tls=(cert, key))) as proxy:
        with pytest.raises(InputError, match=r"x509|certificate"):
            push_images(site, proxy.host, [], None, "REGISTRY_USERNAME", "REGISTRY_PASSWORD", say=lambda line: None)
        pushed, skipped = push_images(site, proxy.host, [], str(ca), "REGISTRY_USERNAME", "REGISTRY_PASSWORD", say=lambda line: None)
    assert (pushed, skipped) == (len(load_images_lock(site / "images" / "stage.lock.yaml").images), 0)


def test_the_site_platforms_decide_what_a_multi_arch_image_keeps(tmp_path: Path) -> None:
    from cli.crane import session
    from model.images_lock import ImagesLock, LockedImage
    from model.oci_layout import platforms_of
    from offline.transfer import Mirrors, fetch
    from tests.support.registry import publish_image

    with serve_registry(tmp_path / "source") as source:
        three = publish_image(source.host, "docker.io/acme/tool:1", ("linux/amd64", "linux/arm64", "linux/s390x"))
        publish_image(source.host, "docker.io/acme/arm-only:1", ("linux/arm64",))
        (tmp_path / "mirrors.yaml").write_text(yaml.safe_dump({"mirrors": {"docker.io": {"endpoint": f"{source.host}/docker.io"}}}))
        from offline.transfer import load_mirrors

        mirrors: Mirrors = load_mirrors(tmp_path / "mirrors.yaml")
        tool = ImagesLock("t", None, (LockedImage("docker.io/acme/tool:1", ("r",)),))
        results = {}
        with session() as crane:
            for platforms in (("linux/amd64",), ("linux/amd64", "linux/arm64"), ("linux/amd64", "linux/arm64", "linux/s390x")):
                layout = tmp_path / "-".join(p.replace("/", "_") for p in platforms) / "oci"
                image = fetch(tool, layout, crane, mirrors, platforms, {}, lambda line: None).images[0]
                assert image.platforms == platforms and platforms_of(layout, str(image.digest)) == list(platforms)
                results[platforms] = image
            arm = ImagesLock("t", None, (LockedImage("docker.io/acme/arm-only:1", ("r",)),))
            with pytest.raises(InputError, match=r"built for \['linux/arm64'\] only"):
                fetch(arm, tmp_path / "arm" / "oci", crane, mirrors, ("linux/amd64",), {}, lambda line: None)
    everything = results[("linux/amd64", "linux/arm64", "linux/s390x")]
    assert everything.digest == three and everything.source_digest is None, "an index with exactly the site's platforms keeps its digest"
    cut = [results[("linux/amd64",)], results[("linux/amd64", "linux/arm64")]]
    assert all(i.source_digest == three and i.digest != three for i in cut) and cut[0].digest != cut[1].digest
