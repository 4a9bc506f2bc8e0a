"""A real headless browser for the tests: Debian's Chromium (`make chromium` installs it).

Each call starts Chromium once with a new empty profile and the flags this
machine needs (no sandbox as root, no GPU, no background network), on a
`file://` page, and waits at most BROWSER_TIMEOUT_S. `dump_dom` returns the
DOM after the page's scripts ran; `screenshot` writes a PNG; `png_facts`
reads one back (size and how many colours it shows) with the standard library.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

INSTALL_HINT = "run `make chromium` (toolchain/install-chromium.sh: apt-get install -y chromium)"
BROWSER_TIMEOUT_S = 120
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=5000")


def chromium() -> str:
    """The Chromium binary; fails with the install command when there is none."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError(f"Chromium is missing: {INSTALL_HINT}")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="astrago-chromium-") as profile:
        result = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                                timeout=BROWSER_TIMEOUT_S, env={**os.environ, "HOME": profile})
    assert result.returncode == 0, f"chromium {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}"
    return result


def dump_dom(url: str) -> str:
    """The page's DOM as serialized after its scripts ran."""
    return _run("--dump-dom", url).stdout


def screenshot(url: str, path: Path, width: int = 1280, height: int = 1600) -> Path:
    """A PNG of the page's first width x height pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _run(f"--screenshot={path}", f"--window-size={width},{height}", url)
    assert path.is_file() and path.stat().st_size > 0, f"chromium wrote no screenshot at {path}"
    return path


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct colours) of an 8-bit RGB or RGBA PNG, decoded here."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), f"{path}: colour type {colour}, depth {depth}"
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    previous, offset = bytearray(stride), 0
    colours: set[bytes] = set()
    for _ in range(height):
        row_filter, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if row_filter == 1:
                line[i] = (line[i] + left) & 255
            elif row_filter == 2:
                line[i] = (line[i] + up) & 255
            elif row_filter == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif row_filter == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, channels * 8))  # every 8th pixel is plenty
        previous = line
    return width, height, len(colours)


def body_attributes(dom: str) -> dict[str, str]:
    [body] = re.findall(r"<body([^>]*)>", dom)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body))


def visible_updates(dom: str) -> list[int]:
    """Numbers of the timeline's updates the browser shows (not `hidden`), in page order."""
    return [int(n) for n, attrs in re.findall(r'<details class="ev[^"]*" id="u(\d+)"([^>]*)>', dom) if "hidden" not in attrs]
