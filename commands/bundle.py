"""`make bundle`, `make unbundle`, `make images-push`, `make bundle-key`: the offline bundle's command line (the work is in offline/bundle.py)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.process import ToolError
from commands import ROOT
from model.errors import InputError, entry_point
from offline.bundle import CHARTS, create, push_images, unpack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.bundle", description="Offline bundle: create, unpack, push its images, or make a signing key.")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="pack and sign the charts, images, stack file(s) and tool pins of a stack")
    make.add_argument("--stack", required=True)
    make.add_argument("--out", required=True, help="the bundle to write (.tar, or .tar.gz)")
    make.add_argument("--charts-dir", help="charts folder to bundle (default: charts/)")
    make.add_argument("--signing-key", help="Ed25519 private key (PEM) that signs the bundle (make bundle-key)")
    make.add_argument("--mirrors", help="YAML file mapping upstream registries to mirrors (README: the offline bundle)")
    make.add_argument("--reuse", action="append", default=[], help="a previous bundle (file, unpacked folder or image layout): its images are not fetched again")
    make.add_argument("--root", default=str(ROOT), help="the project whose stack files, catalog and values are bundled (default: this checkout)")
    take = sub.add_parser("unpack", help="verify a bundle and lay it out in a new folder")
    take.add_argument("--bundle", required=True)
    take.add_argument("--into", help="new or empty folder (default: the bundle's path without .tar/.tar.gz)")
    take.add_argument("--trusted-key", action="append", default=[], help="public key of a signer this site trusts (repeat during a key rotation)")
    take.add_argument("--sha256", help="the bundle's sha256 as `make bundle` printed it")
    for command in (take, sub.add_parser("push", help="push the images of an unpacked bundle (or a bundle file) to the site registry")):
        command.add_argument("--registry", help="site registry host[:port][/project] to push every image to")
        command.add_argument("--ca-file", help="CA certificate of the site registry")
        command.add_argument("--username-env", default="REGISTRY_USERNAME", help="environment variable holding the registry user")
        command.add_argument("--password-env", default="REGISTRY_PASSWORD", help="environment variable holding the registry password")
    pushing = sub.choices["push"]
    pushing.add_argument("--from", dest="source", required=True, help="the folder `make unbundle` wrote, or a bundle file")
    pushing.add_argument("--trusted-key", action="append", default=[])
    key = sub.add_parser("key", help="create an Ed25519 signing key pair")
    key.add_argument("--out", required=True, help="private key file (the public key is written beside it as <out>.pub)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.command == "key":
            from model.signing import generate

            private = Path(args.out)
            fingerprint = generate(private, Path(f"{private}.pub"))
            print(f"bundle-key: {private} (private, mode 0600: keep it out of the repository) and {private}.pub (give it to the sites); key {fingerprint}")
            return 0
        if args.command == "create":
            created = create(args.stack, Path(args.out), Path(args.root), charts_dir=args.charts_dir, signing_key=Path(args.signing_key) if args.signing_key else None,
                             mirrors=Path(args.mirrors) if args.mirrors else None, reuse=[Path(p) for p in args.reuse])
            for line in created.image_warnings:
                print(line)
            size = sum(i.size or 0 for i in created.images)
            print(f"bundle: {created.path} ({len(created.files)} files, {len(created.images)} images of {size} bytes, "
                  f"{created.path.stat().st_size} bytes) signed, in {time.monotonic() - started:.1f}s")
            print(f"bundle: sha256 {created.sha256}  (give it to the site: make unbundle SHA256=...)")
            return 0
        if args.command == "push":
            if not args.registry:
                raise InputError("give REGISTRY=<site registry host[:port]>")
            pushed, skipped = push_images(Path(args.source), args.registry, [Path(p) for p in args.trusted_key], args.ca_file,
                                          args.username_env, args.password_env)
            print(f"images-push: {pushed} pushed, {skipped} already there; every digest checked at {args.registry} in {time.monotonic() - started:.1f}s")
            return 0
        bundle = Path(args.bundle)
        into = Path(args.into) if args.into else bundle.with_name(bundle.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz"))
        written = unpack(bundle, into, [Path(p) for p in args.trusted_key], args.sha256)
    except InputError as error:
        print(f"bundle {args.command}: refused, nothing was written or pushed:\n{error}", file=sys.stderr)
        return 1
    except ToolError as error:
        print(f"bundle {args.command}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        # Disk full, no permission: the staging folder is already removed, the target never appeared.
        print(f"bundle {args.command}: failed, nothing was written: {error}", file=sys.stderr)
        return 1
    print(f"bundle: {len(written)} files verified and unpacked into {into} in {time.monotonic() - started:.1f}s")
    print(f"bundle: deploy from it with `astrago-deploy:chartsDir: {(into / CHARTS).resolve()}`")
    for lock in sorted((into / "images").glob("*.lock.yaml")):
        print(f"bundle: the post-render pins images to the digests of {lock}: `cp {lock} {ROOT / 'images' / lock.name}` in the checkout you deploy from")
    if args.registry:
        try:
            pushed, skipped = push_images(into, args.registry, [], args.ca_file, args.username_env, args.password_env)
        except InputError as error:
            print(f"bundle unpack: unpacked, but the image push stopped (run `make images-push BUNDLE={into} REGISTRY={args.registry}` to resume):\n{error}",
                  file=sys.stderr)
            return 1
        print(f"images-push: {pushed} pushed, {skipped} already there; every digest checked at {args.registry}")
    return 0


if __name__ == "__main__":
    entry_point(main, "bundle")
