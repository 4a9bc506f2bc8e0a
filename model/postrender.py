"""Helm's post-renderer for our releases: the release's patches, then the air-gap image rewrite.

How the Kubernetes provider runs it (pulumi-kubernetes provider/pkg/provider/helm_release.go,
helmCreate/helmUpdate): `postrender` is one executable path, passed to Helm's
`postrender.NewExec(cmd)` with no arguments; a path with a '/' is resolved
against the provider's working directory, which Pulumi sets to the project
root. It runs only on install and upgrade, never during preview (Diff compares
inputs only). So each release that needs it gets a small wrapper script at a
relative path, ``.state/postrender/<stack>/<release>``, written by the program
on every run: the path (a Release input) is the same on every machine, and
the wrapper carries the machine's Python, the project root and the
release's arguments. What the post-render does is in the Release inputs
through its description (patch digest and registry), so an edit shows as an
update.

Run as ``python -m model.postrender --release R --namespace N [--patches]
[--registry REG]`` from the project root: reads the manifests on stdin,
writes them on stdout. Documents it does not change are written back byte for
byte; a failure exits 1 with the patch file and the reason on stderr (Helm
shows it).

Images: with a registry set, every image of every container list
(``containers``, ``initContainers``, ``ephemeralContainers``) anywhere in a
rendered object, so Pods, every workload's pod template, CronJob job templates
and custom resources embedding pod specs, moves to that registry: the
registry host is replaced, the repository path, tag and digest are kept, and a
Docker Hub short name gets its ``library/`` prefix (``nginx:1.27`` ->
``<registry>/library/nginx:1.27``), as Zarf's image mutation does. Helm 3 does
not pass chart hooks to a post-renderer, so hook objects keep their images.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model.errors import InputError
from model.patches import PATCHES_DIR, Patch, PatchSet, apply_patches, json_equal, load_patches, patch_files

WRAPPER_DIR = Path(".state/postrender")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
# host[:port][/path]: no scheme, no tag, lower-case path as image references require.
REGISTRY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
SEPARATOR = re.compile(r"^---[ \t]*(#.*)?$")


@dataclass(frozen=True)
class PostRender:
    """What the post-renderer does for one release, and where its wrapper lives."""

    root: str
    """Absolute project root: where the wrapper runs (and is written)."""
    wrapper: str
    """The Release's `postrender`: the wrapper's path relative to the project root."""
    release: str
    namespace: str
    """Namespace of objects that name none (the release's)."""
    patches: PatchSet | None
    registry: str | None
    """Registry every image is moved to, or None."""

    def description(self) -> str:
        """What the post-render changes, for the Helm release description (a Release input)."""
        parts = []
        if self.patches:
            parts.append(f"patches sha256:{self.patches.digest}")
        if self.registry:
            parts.append(f"images from {self.registry}")
        return "; ".join(parts)

    def arguments(self) -> list[str]:
        args = ["--release", self.release, "--namespace", self.namespace]
        if self.patches:
            args.append("--patches")
        if self.registry:
            args += ["--registry", self.registry]
        return args


def check_registry(value: str, where: str) -> str:
    """The registry without a trailing '/'; InputError when it is not host[:port][/path]."""
    registry = value.rstrip("/")
    if not REGISTRY.match(registry):
        raise InputError(f"{where}: {value!r} is not a registry; write host[:port][/path] without scheme or tag, e.g. harbor.site.local:5000/astrago")
    return registry


def plan_postrender(root: Path, stack: str, release: str, namespace: str, patches: PatchSet | None, registry: str | None) -> PostRender | None:
    """The post-render of a release, or None when it has neither patches nor a registry to move images to."""
    if patches is None and not registry:
        return None
    wrapper = (WRAPPER_DIR / stack / release).as_posix()
    return PostRender(root=str(root.resolve()), wrapper=wrapper, release=release, namespace=namespace, patches=patches, registry=registry or None)


def wrapper_script(spec: PostRender, python: str) -> str:
    """The wrapper's text: run this module from the project root with the release's arguments."""
    command = " ".join(shlex.quote(a) for a in [python, "-m", "model.postrender", *spec.arguments()])
    return (
        "#!/bin/sh\n"
        f"# Helm post-renderer of release {spec.release}, written by the astrago-deploy program on each run; do not edit.\n"
        f"cd {shlex.quote(spec.root)} || exit 1\n"
        f"exec {command}\n"
    )


def write_wrapper(spec: PostRender, python: str = sys.executable) -> Path:
    """Write (or refresh) the release's wrapper, executable, atomically; return its absolute path."""
    path = Path(spec.root) / spec.wrapper
    text = wrapper_script(spec, python)
    if path.is_file() and path.read_text() == text and os.access(path, os.X_OK):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    temporary.chmod(0o755)
    temporary.replace(path)
    return path


# --- images -----------------------------------------------------------------

def rewrite_image(image: str, registry: str) -> str:
    """An image reference moved to `registry`, path, tag and digest kept.

    'nginx:1.27' -> '<registry>/library/nginx:1.27'; 'quay.io/a/b@sha256:..'
    -> '<registry>/a/b@sha256:..'; an image already under the registry is kept.
    """
    if not image or image.startswith(registry + "/"):
        return image
    _, path, digest = split_image(image)
    return f"{registry}/{path}{digest}"


def split_image(reference: str) -> tuple[str, str, str]:
    """(domain, path with tag, '@digest' or '') as container runtimes read a reference.

    The first segment is a registry only when it looks like a host (a dot, a
    port or localhost); otherwise the image is on Docker Hub, whose one-segment
    names live under library/: 'nginx:1.27' -> ('docker.io', 'library/nginx:1.27', '').
    """
    name, at, digest = reference.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain in DOCKER_HUB:
        domain = "docker.io"
        if "/" not in path:
            path = f"library/{path}"
    return domain, path, at + digest


def rewrite_images(doc: Any, registry: str) -> Any:
    """An object with every container image moved to `registry` (CRDs are left alone: their schemas are not pods)."""
    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
        return doc
    return _rewrite(doc, registry)


def _rewrite(node: Any, registry: str) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key in CONTAINER_LISTS and isinstance(value, list):
                result[key] = [_container(item, registry) for item in value]
            else:
                result[key] = _rewrite(value, registry)
        return result
    if isinstance(node, list):
        return [_rewrite(item, registry) for item in node]
    return node


def _container(item: Any, registry: str) -> Any:
    if isinstance(item, dict) and isinstance(item.get("image"), str):
        return {**_rewrite(item, registry), "image": rewrite_image(item["image"], registry)}
    return _rewrite(item, registry)


# --- the stream ---------------------------------------------------------------

def split_documents(text: str) -> list[str]:
    """A manifest stream cut at its '---' lines (each chunk without the separator)."""
    chunks: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if SEPARATOR.match(line.rstrip("\r\n")):
            chunks.append([])
        else:
            chunks[-1].append(line)
    return ["".join(c) for c in chunks if "".join(c).strip()]


def render(text: str, patches: tuple[Patch, ...], namespace: str, registry: str | None) -> str:
    """Post-render a manifest stream: patches in order, then the image rewrite."""
    chunks = split_documents(text)
    docs: list[Any] = []
    for index, chunk in enumerate(chunks):
        try:
            parsed = [d for d in yaml.safe_load_all(chunk) if d is not None]
        except yaml.YAMLError as error:
            raise InputError(f"rendered document {index + 1} is not valid YAML: {error}") from None
        if len(parsed) > 1:
            raise InputError(f"rendered document {index + 1} holds {len(parsed)} objects where one was expected")
        docs.append(parsed[0] if parsed else None)
    result = apply_patches(docs, patches, namespace) if patches else list(docs)
    if registry:
        result = [rewrite_images(doc, registry) for doc in result]
    out = []
    for chunk, before, after in zip(chunks, docs, result, strict=True):
        if json_equal(before, after):
            out.append(chunk if chunk.endswith("\n") else chunk + "\n")
        else:
            # Keep the chunk's leading comments (Helm's `# Source:` line); the object is written anew.
            lines = chunk.splitlines(keepends=True)
            head = []
            for line in lines:
                if line.strip() and not line.lstrip().startswith("#"):
                    break
                head.append(line if line.endswith("\n") else line + "\n")
            out.append("".join(head) + yaml.safe_dump(after, sort_keys=False, allow_unicode=True, width=1 << 30))
    return "".join(f"---\n{chunk}" for chunk in out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.postrender", description="Helm post-renderer: manifests on stdin, patched manifests on stdout.")
    parser.add_argument("--release", required=True, help="release whose patches apply (charts/patches/<release>/)")
    parser.add_argument("--namespace", required=True, help="namespace of objects that name none")
    parser.add_argument("--patches", action="store_true", help="apply the release's patches")
    parser.add_argument("--registry", help="move every container image to this registry")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        patches: tuple[Patch, ...] = ()
        if args.patches:
            files = patch_files(root / PATCHES_DIR / args.release)
            if not files:
                raise InputError(f"{PATCHES_DIR / args.release}/ holds no patch file, yet the release was planned with patches; run the preview again")
            patches = load_patches(root, files)
        registry = check_registry(args.registry, "--registry") if args.registry else None
        sys.stdout.write(render(sys.stdin.read(), patches, args.namespace, registry))
    except InputError as error:
        print(f"astrago-deploy post-render of release {args.release!r} failed:\n{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
