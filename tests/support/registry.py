"""OCI registries on 127.0.0.1 for tests, and images assembled without a Docker engine.

`serve_registry` runs go-containerregistry's registry (`crane registry serve
--disk`) on a free loopback port until the block ends, and checks the port is
closed afterwards. `publish_image` writes an image as a registry would hold
it, by hand: a gzip tar layer with a file unique to the image, an image
config with os/architecture, a manifest, and for several platforms an OCI
index; `crane push` puts the layout into the registry. `FlakyProxy` sits in
front of a registry and can refuse requests after a number of uploads (a site
registry that fails halfway) or demand basic auth.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from model.images import parse_reference
from offline.image_list import collect

ROOT = Path(__file__).resolve().parents[2]
CRANE = ROOT / ".tools" / "bin" / "crane"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# Images published for three platforms by publish_stack_images (the bundle keeps the site's): harbor's core.
MULTI_ARCH = "/goharbor/harbor-core:"


def require_crane() -> Path:
    if not CRANE.exists():
        raise AssertionError(f"{CRANE} is missing: run `make setup` (the registry tests need the crane CLI)")
    return CRANE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


@dataclass
class Registry:
    host: str
    port: int
    disk: Path
    process: subprocess.Popen[bytes]


@contextmanager
def serve_registry(disk: Path, port: int | None = None) -> Iterator[Registry]:
    """`crane registry serve` on 127.0.0.1 (a free port unless given), blobs on disk, stopped when the block ends."""
    disk.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = (disk.parent / f"{disk.name}.log").open("wb")
    process = subprocess.Popen([str(require_crane()), "registry", "serve", "--address", f"127.0.0.1:{port}", "--disk", str(disk)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if not port_closed(port):
                break
            if process.poll() is not None:
                raise AssertionError(f"crane registry serve exited {process.returncode}: {(disk.parent / f'{disk.name}.log').read_text()[-500:]}")
            time.sleep(0.1)
        else:
            raise AssertionError(f"crane registry serve did not listen on 127.0.0.1:{port} within 10 s")
        yield Registry(host=f"127.0.0.1:{port}", port=port, disk=disk, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _blob(folder: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (folder / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (folder / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _image(folder: Path, name: str, platform: str, payload_bytes: int) -> dict[str, object]:
    """One image (layer, config, manifest) in folder's blobs; its manifest descriptor."""
    os_name, arch, *variant = platform.split("/")
    # Incompressible like real layers, the same bytes on every run.
    content = f"{name} {platform}\n".encode() + hashlib.shake_256(f"{name}{platform}".encode()).digest(payload_bytes)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo("etc/image-name")
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    layer_tar = raw.getvalue()
    layer = _blob(folder, gzip.compress(layer_tar, mtime=0))
    config_body = {"architecture": arch, "os": os_name, **({"variant": variant[0]} if variant else {}),
                   "config": {"Entrypoint": ["/bin/true"]},
                   "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"]}}
    config = _blob(folder, json.dumps(config_body).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}
    descriptor = _blob(folder, json.dumps(manifest).encode())
    platform_field = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
    return {"mediaType": OCI_MANIFEST, **descriptor, "platform": platform_field}


def publish_image(registry_host: str, path: str, platforms: tuple[str, ...] = ("linux/amd64",), payload_bytes: int = 2048) -> str:
    """Assemble an image (an index when several platforms) and push it as registry_host/path; return its digest."""
    with tempfile.TemporaryDirectory(prefix="image-") as scratch:
        folder = Path(scratch)
        children = [_image(folder, path, platform, payload_bytes) for platform in platforms]
        if len(children) == 1:
            top = {key: value for key, value in children[0].items() if key != "platform"}
        else:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
            top = {"mediaType": OCI_INDEX, **_blob(folder, json.dumps(index).encode())}
        (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}))
        out = subprocess.run([str(require_crane()), "push", str(folder), f"{registry_host}/{path}"], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError(f"crane push {registry_host}/{path} failed: {out.stderr[-500:]}")
        return str(top["digest"])


def digests_in(registry_host: str, repository: str) -> list[str]:
    """Tags of a repository (crane ls), [] when it has none."""
    out = subprocess.run([str(require_crane()), "ls", f"{registry_host}/{repository}"], capture_output=True, text=True, timeout=60)
    return out.stdout.split() if out.returncode == 0 else []


@dataclass
class FlakyProxy:
    """An HTTP proxy in front of a registry on 127.0.0.1: fails every request once `fail_after_uploads` manifest PUTs went through."""

    upstream: str
    fail_after_uploads: int | None = None
    username: str | None = None
    password: str | None = None
    tls: tuple[Path, Path] | None = None
    """(certificate, key): serve HTTPS with them (see tls_files)."""
    uploads: int = 0
    host: str = ""
    port: int = 0
    requests: list[str] = field(default_factory=list)


@contextmanager
def flaky_proxy(proxy: FlakyProxy) -> Iterator[FlakyProxy]:
    expected_auth = f"Basic {base64.b64encode(f'{proxy.username}:{proxy.password}'.encode()).decode()}" if proxy.username else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            proxy.requests.append(f"{self.command} {self.path}")
            if expected_auth and self.headers.get("Authorization") != expected_auth:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="site"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if proxy.fail_after_uploads is not None and proxy.uploads >= proxy.fail_after_uploads and self.command != "GET" and self.command != "HEAD":
                body = b'{"errors":[{"code":"UNAVAILABLE","message":"storage quota reached"}]}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body_in = self.rfile.read(length) if length else b""
            connection = http.client.HTTPConnection(proxy.upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
            connection.request(self.command, self.path, body=body_in, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            if self.command == "PUT" and "/manifests/" in self.path and answer.status < 300:
                proxy.uploads += 1
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() in ("content-length", "transfer-encoding", "connection"):
                    continue
                if key.lower() == "location":
                    value = value.replace(f"http://{proxy.upstream}", f"http://{proxy.host}")
                self.send_header(key, value)
            # A HEAD answer carries the size of what GET would send (crane reads descriptors from it).
            self.send_header("Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            connection.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if proxy.tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(proxy.tls[0]), str(proxy.tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    proxy.port = int(server.server_address[1])
    proxy.host = f"127.0.0.1:{proxy.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def publish_stack_images(stack: str, charts: Path, registry_host: str, mirrors: Path, multi_arch: str = MULTI_ARCH,
                         root: Path = ROOT, payload_bytes: int = 2048) -> dict[str, str]:
    """Every image the stack renders, assembled and pushed under <registry>/<upstream registry>/<path>; the mirrors file mapping each upstream there."""
    references = sorted({r.reference for r in collect(stack, root, str(charts)).images})
    digests: dict[str, str] = {}
    domains: set[str] = set()
    for reference in references:
        parsed = parse_reference(reference)
        assert parsed is not None and not parsed.digest, reference
        domain, path = parsed.domain, f"{parsed.path}:{parsed.tag}"
        domains.add(domain)
        platforms = ("linux/amd64", "linux/arm64", "linux/s390x") if multi_arch in reference else ("linux/amd64",)
        digests[reference] = publish_image(registry_host, f"{domain}/{path}", platforms, payload_bytes)
    mirrors.write_text(yaml.safe_dump({"mirrors": {domain: {"endpoint": f"{registry_host}/{domain}"} for domain in sorted(domains)}}))
    return digests


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signs for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "astrago test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths
