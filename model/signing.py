"""Ed25519 signatures of an offline bundle's manifest, with the `cryptography` package.

The bundle's SHA256SUMS names every file and its sha256 (image blobs
included), so signing it signs the bundle. The signature file is JSON:
{"algorithm": "ed25519", "key": <fingerprint>, "signed": "SHA256SUMS",
"signature": <base64>}, the fingerprint being the sha256 of the raw public
key, so a refusal can say which key signed and which keys the site trusts.
Keys are PEM: PKCS#8 private keys (optionally encrypted with a passphrase
from an environment variable), SubjectPublicKeyInfo public keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from model.errors import InputError

ALGORITHM = "ed25519"
PASSPHRASE_ENV = "ASTRAGO_BUNDLE_KEY_PASSPHRASE"


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def generate(private_path: Path, public_path: Path) -> str:
    """A new key pair: the private key 0600 (encrypted when the passphrase variable is set), the public key beside it."""
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(f"{path} exists; a signing key is never overwritten (move it away to rotate, see README)")
    key = Ed25519PrivateKey.generate()
    passphrase = os.environ.get(PASSPHRASE_ENV)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return fingerprint(key.public_key())


def load_private(path: Path) -> Ed25519PrivateKey:
    if not path.is_file():
        raise InputError(f"signing key {path}: no such file; create one with `make bundle-key` (README: the offline bundle)")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as error:
        raise InputError(f"signing key {path}: cannot be read ({error}); is {PASSPHRASE_ENV} set to its passphrase?") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"signing key {path}: not an Ed25519 key; create one with `make bundle-key`")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    if not path.is_file():
        raise InputError(f"trusted key {path}: no such file; give the public key (.pub) of the bundle's signer")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as error:
        raise InputError(f"trusted key {path}: not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"trusted key {path}: not an Ed25519 public key")
    return key


def sign(data: bytes, key: Ed25519PrivateKey, signed: str) -> bytes:
    body = {"algorithm": ALGORITHM, "key": fingerprint(key.public_key()), "signed": signed,
            "signature": base64.b64encode(key.sign(data)).decode()}
    return (json.dumps(body, indent=2) + "\n").encode()


def verify(data: bytes, signature_file: bytes, trusted: list[Ed25519PublicKey], where: str) -> str:
    """The fingerprint of the trusted key that signed data; InputError when none did."""
    try:
        body = json.loads(signature_file)
        signature = base64.b64decode(body["signature"], validate=True)
        algorithm, signer = body["algorithm"], str(body["key"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{where}: the signature file is not one `make bundle` writes; refusing the bundle") from None
    if algorithm != ALGORITHM:
        raise InputError(f"{where}: signed with {algorithm!r}, only {ALGORITHM} is accepted; refusing the bundle")
    known = {fingerprint(key): key for key in trusted}
    if signer not in known:
        raise InputError(f"{where}: signed by key {signer}, which is not a trusted key of this site (trusted: {sorted(known)}); "
                         "refusing the bundle: get the signer's public key through a channel you trust, or a bundle signed by a trusted key")
    try:
        known[signer].verify(signature, data)
    except InvalidSignature:
        raise InputError(f"{where}: the signature does not match the bundle's manifest (altered after signing); refusing the bundle") from None
    return signer
