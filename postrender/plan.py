"""What the post-render of one release does, and the wrapper Helm runs for it.

How the Kubernetes provider runs a post-renderer (pulumi-kubernetes
provider/pkg/provider/helm_release.go, helmCreate/helmUpdate): `postrender`
is one executable path, passed to Helm's `postrender.NewExec(cmd)` with no
arguments; a path with a '/' is resolved against the provider's working
directory, the project root. It runs only on install and upgrade, never
during preview (Diff compares inputs only; render/releases.py renders every
release with its post-render at preview, so what the post-render refuses
fails the preview). So each release that needs it gets a small wrapper at
``.state/postrender/<stack>/<release>``, written by the program on every run:
the path (a Release input) is the same on every machine, and the wrapper
carries the machine's Python, the project root and the release's arguments.
What the post-render does is in the release's description (patch digest,
registry, digest of the release's pinned images), so an edit shows as an update.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from model.errors import InputError
from model.images_lock import load_images_lock, lock_path
from postrender.kustomize import PatchSet

WRAPPER_DIR = Path(".state/postrender")
# The post-render's refusal as Helm passes it on: "...post render on files: error while running command <wrapper>. error output:\n<ours>\n: exit status 1".
_REFUSED = "astrago-deploy post-render of release {release!r} failed:"
_REFUSAL = re.compile(r"astrago-deploy post-render of release '[^']*' failed:\n(?P<body>.*?)(?:\n: exit status \d+)?\s*$", re.DOTALL)
# host[:port][/path]: no scheme, no tag, lower-case path as image references require.
REGISTRY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


@dataclass(frozen=True)
class PostRender:
    """What the post-renderer does for one release, and where its wrapper lives."""

    root: str
    """Absolute project root: where the wrapper runs (and is written)."""
    wrapper: str
    """The Release's `postrender`: the wrapper's path relative to the project root."""
    release: str
    namespace: str
    patches: PatchSet | None
    registry: str | None
    """Registry every image is moved to, or None."""
    lock: str | None = None
    """With a registry: the stack's images lock (relative to the root) whose digests pin every image."""
    pins: str | None = None
    """sha256 over the release's images and digests in the lock (None: no usable lock; preflight says why)."""

    def description(self) -> str:
        """What the post-render changes, for the Helm release description (a Release input)."""
        parts = []
        if self.patches:
            parts.append(f"patches sha256:{self.patches.digest}")
        if self.registry:
            parts.append(f"images from {self.registry}" + (f" pinned sha256:{self.pins}" if self.pins else ""))
        return "; ".join(parts)

    def arguments(self) -> list[str]:
        args = ["--release", self.release, "--namespace", self.namespace]
        if self.patches:
            args.append("--patches")
        if self.registry:
            args += ["--registry", self.registry, "--lock", str(self.lock)]
        return args


def check_registry(value: str, where: str) -> str:
    """The registry without a trailing '/'; InputError when it is not host[:port][/path]."""
    registry = value.rstrip("/")
    if not REGISTRY.match(registry):
        raise InputError(f"{where}: {value!r} is not a registry; write host[:port][/path] without scheme or tag, e.g. harbor.site.local:5000/astrago")
    return registry


def release_pins(root: Path, stack: str, release: str) -> str | None:
    """Digest over (reference, digest) of the release's images in the stack's lock; None when the lock is missing or unreadable."""
    try:
        lock = load_images_lock(lock_path(root, stack))
    except InputError:
        return None
    lines = sorted(f"{i.reference} {i.digest or '-'}" for i in lock.images if release in i.releases)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def plan_postrender(root: Path, stack: str, release: str, namespace: str, patches: PatchSet | None, registry: str | None) -> PostRender | None:
    """The post-render of a release, or None when it has neither patches nor a registry to move images to."""
    if patches is None and not registry:
        return None
    wrapper = (WRAPPER_DIR / stack / release).as_posix()
    lock = lock_path(Path("."), stack).as_posix() if registry else None
    pins = release_pins(root, stack, release) if registry else None
    return PostRender(root=str(root.resolve()), wrapper=wrapper, release=release, namespace=namespace,
                      patches=patches, registry=registry or None, lock=lock, pins=pins)


def wrapper_script(spec: PostRender, python: str) -> str:
    """The wrapper's text: run the post-render from the project root with the release's arguments."""
    command = " ".join(shlex.quote(a) for a in [python, "-m", "postrender", *spec.arguments()])
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


def refusal(release: str, error: Exception) -> str:
    """What the post-render prints on stderr when it refuses a release (`refused_problems` reads it back out of Helm's message)."""
    return f"{_REFUSED.format(release=release)}\n{error}"


def refused_problems(helm_message: str) -> list[str] | None:
    """The problems the post-render reported, out of Helm's message; None when Helm failed for another reason."""
    match = _REFUSAL.search(helm_message)
    if match is None:
        return None
    body = match["body"].strip()
    lines = body.split("\n")
    return [line[2:] for line in lines] if len(lines) > 1 and all(line.startswith("- ") for line in lines) else [body]
