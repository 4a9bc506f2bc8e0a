"""Pure parts of the supply chain: signatures, image layouts, mirrors, index digests (no tools)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.helm_pull import _index_digest
from model.errors import InputError
from model.images_lock import ImagesLock, LockedImage, load_images_lock, write_images_lock
from model.oci_layout import Descriptor, add_blob, check_layout, init_layout, write_index
from model.signing import generate, load_private, load_public, sign, verify
from offline.bundle import parse_sums, site_platforms
from offline.transfer import load_mirrors, site_reference


def test_a_signature_verifies_with_its_key_and_not_with_another(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.key", tmp_path / "a.pub")
    generate(tmp_path / "b.key", tmp_path / "b.pub")
    assert (tmp_path / "a.key").stat().st_mode & 0o777 == 0o600
    data = b"0" * 64 + b"  charts/external.yaml\n"
    signature = sign(data, load_private(tmp_path / "a.key"), "SHA256SUMS")
    assert verify(data, signature, [load_public(tmp_path / "a.pub")], "bundle x") == first
    with pytest.raises(InputError, match="not a trusted key of this site"):
        verify(data, signature, [load_public(tmp_path / "b.pub")], "bundle x")
    with pytest.raises(InputError, match="does not match the bundle's manifest"):
        verify(data.replace(b"0", b"1", 1), signature, [load_public(tmp_path / "a.pub")], "bundle x")
    # During a rotation a site trusts the old and the new key.
    assert verify(data, signature, [load_public(tmp_path / "b.pub"), load_public(tmp_path / "a.pub")], "bundle x") == first
    with pytest.raises(InputError, match="never overwritten"):
        generate(tmp_path / "a.key", tmp_path / "c.pub")


def test_a_garbled_signature_file_is_refused(tmp_path: Path) -> None:
    generate(tmp_path / "a.key", tmp_path / "a.pub")
    with pytest.raises(InputError, match="not one `make bundle` writes"):
        verify(b"x", b"{not json", [load_public(tmp_path / "a.pub")], "bundle x")
    with pytest.raises(InputError, match="only ed25519"):
        verify(b"x", json.dumps({"algorithm": "rsa", "key": "k", "signature": ""}).encode(), [load_public(tmp_path / "a.pub")], "bundle x")


def _layout(tmp_path: Path) -> tuple[Path, Descriptor]:
    layout = tmp_path / "oci"
    init_layout(layout)
    layer = add_blob(layout, b"layer")
    config = add_blob(layout, json.dumps({"os": "linux", "architecture": "amd64"}).encode())
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": config, "size": len(json.dumps({"os": "linux", "architecture": "amd64"}))},
                           "layers": [{"digest": layer, "size": 5}]}).encode()
    descriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", add_blob(layout, manifest), len(manifest), "docker.io/library/x:1")
    write_index(layout, [descriptor])
    return layout, descriptor


def test_a_layout_must_hold_exactly_the_locked_images_with_every_blob(tmp_path: Path) -> None:
    layout, image = _layout(tmp_path)
    assert check_layout(layout, {image.digest: image.reference}) == []
    extra = Descriptor(image.media_type, add_blob(layout, b'{"schemaVersion":2,"layers":[]}'), 31, "docker.io/evil/miner:1")
    write_index(layout, [image, extra])
    assert any("evil/miner" in p and "does not list" in p for p in check_layout(layout, {image.digest: image.reference}))
    write_index(layout, [image])
    layer = next(p for p in (layout / "blobs" / "sha256").iterdir() if p.read_bytes() == b"layer")
    layer.unlink()
    assert any("is missing" in p for p in check_layout(layout, {image.digest: image.reference}))
    assert any("lacks docker.io/library/y:2" in p for p in check_layout(layout, {image.digest: image.reference, "sha256:" + "1" * 64: "docker.io/library/y:2"}))


def test_mirrors_map_registries_like_containerd(tmp_path: Path) -> None:
    (tmp_path / "mirrors.yaml").write_text("mirrors:\n  docker.io: {endpoint: 'http://127.0.0.1:5000/docker.io'}\n  '*': {endpoint: '127.0.0.1:5000/other'}\n")
    mirrors = load_mirrors(tmp_path / "mirrors.yaml")
    assert mirrors.source("nginx:1.27")[0] == "127.0.0.1:5000/docker.io/library/nginx:1.27"
    assert mirrors.source("quay.io/prometheus/prometheus:v2.54.0")[0] == "127.0.0.1:5000/other/prometheus/prometheus:v2.54.0"
    (tmp_path / "bad.yaml").write_text("mirrors:\n  docker.io: {endpont: x}\n")
    with pytest.raises(InputError, match=r"mirrors\.docker\.io: needs endpoint"):
        load_mirrors(tmp_path / "bad.yaml")


def test_the_site_reference_is_the_post_renders_rewrite(tmp_path: Path) -> None:
    image = LockedImage("docker.io/goharbor/harbor-core:v2.11.1", ("harbor",), digest="sha256:" + "a" * 64, size=10, platforms=("linux/amd64",),
                        source_digest="sha256:" + "b" * 64)
    assert site_reference(image, "site.local:5000") == "site.local:5000/goharbor/harbor-core:v2.11.1"
    assert site_reference(image, "site.local:5000/astrago") == "site.local:5000/astrago/goharbor/harbor-core:v2.11.1"
    lock = ImagesLock("s", "site.local:5000", (image,))
    assert lock.site_reference(image).startswith(site_reference(image, "site.local:5000")), "the post-render's move, same name and tag"
    write_images_lock(lock, tmp_path / "s.lock.yaml")
    assert load_images_lock(tmp_path / "s.lock.yaml").images == (image,)


def test_an_all_digit_index_digest_stays_a_string_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    index = tmp_path / "index.yaml"
    index.write_text("apiVersion: v1\nentries:\n  flux2:\n  - version: 2.16.4\n    digest: " + "0" * 64 + "\n    urls: [a.tgz]\n")
    assert _index_digest(index, "flux2", "2.16.4", "http://r", False) == "0" * 64
    index.write_text("apiVersion: v1\nentries:\n  flux2:\n  - version: 2.16.4\n    urls: [a.tgz]\n")
    with pytest.raises(InputError, match="publishes no digest"):
        _index_digest(index, "flux2", "2.16.4", "http://r", False)
    assert _index_digest(index, "flux2", "2.16.4", "http://r", True) == ""
    index.write_text("apiVersion: v1\nentries:\n  flux2:\n  - version: 2.16.4\n    digest: 12\n")
    with pytest.raises(InputError, match="not a sha256"):
        _index_digest(index, "flux2", "2.16.4", "http://r", False)


def test_sums_give_each_blob_its_name(tmp_path: Path) -> None:
    good = "a" * 64
    assert parse_sums(f"{good}  images/oci/blobs/sha256/{good}\n".encode(), "b") == {f"images/oci/blobs/sha256/{good}": good}
    with pytest.raises(InputError, match="a blob's name is its sha256"):
        parse_sums(f"{'b' * 64}  images/oci/blobs/sha256/{good}\n".encode(), "b")


def test_site_platforms_default_and_declared(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    assert site_platforms([stack]) == ("linux/amd64",)
    stack.write_text("config:\n  astrago-deploy:offline:\n    platforms: linux/arm64,linux/amd64\n")
    assert site_platforms([stack]) == ("linux/amd64", "linux/arm64")
    stack.write_text("config:\n  astrago-deploy:offline:\n    platforms: [amd64]\n")
    with pytest.raises(InputError, match="os/arch"):
        site_platforms([stack])
