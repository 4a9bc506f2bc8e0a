"""Which site runs what: one row per stack, a column per release, as Markdown, JSON and a page.

From the state backend alone (cli/stack_history.load_fleet): each stack's
newest update (when, by whom, result), the chart version and digest of every
release its state holds, and the product's image tags from the values the
astrago release was deployed with. A release column marks each stack behind
the newest version any stack runs, and a version deployed with more than one
digest (same version, other content), so a lagging site stands out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.page import esc, page
from audit.report import md
from cli.stack_history import StackState
from model.history import ReleaseRecord, iso, masked, ran_by, when
from model.values import get_path

PRODUCT_RELEASE = "astrago"
# The product's images in the astrago chart (values `<component>.image.tag`), tagged `{component}-{env}-{short sha}`.
PRODUCT_IMAGES = ("core", "batch", "monitor", "frontend", "experiment")
DEFAULT_TAG = "(chart default)"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Orders chart versions as SemVer does for the usual forms (1.10.0 after 1.9.2; 1.0.0-rc1 before 1.0.0)."""
    core, _, pre = version.lstrip("v").partition("-")
    parts: list[tuple[int, int | str]] = [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+]", core)]
    parts.append((1, "~") if not pre else (0, pre))  # a release sorts after its pre-releases
    return tuple(parts)


def image_tags(releases: dict[str, ReleaseRecord] | None) -> dict[str, str]:
    """Component -> image tag the astrago release was deployed with; `(chart default)` where its values set none."""
    product = (releases or {}).get(PRODUCT_RELEASE)
    if product is None:
        return {c: "-" for c in PRODUCT_IMAGES}
    values = masked(product.values)
    tags = {}
    for component in PRODUCT_IMAGES:
        if get_path(values, f"{component}.enabled") is False:
            tags[component] = "(off)"
            continue
        tag = get_path(values, f"{component}.image.tag")
        tags[component] = str(tag) if tag not in (None, "") else DEFAULT_TAG
    return tags


@dataclass(frozen=True)
class Cell:
    """One release of one stack: what it runs and how it compares with the fleet."""

    version: str
    digest: str
    behind: bool
    """An older chart version than the newest any stack runs."""
    mixed: bool
    """This version runs with more than one digest across the fleet."""

    def text(self) -> str:
        marks = (" (behind)" if self.behind else "") + (" (digest differs)" if self.mixed else "")
        return f"{self.version} {self.digest[:12]}{marks}"


@dataclass(frozen=True)
class Fleet:
    backend: str
    stacks: list[StackState]
    releases: list[str]
    newest: dict[str, str]
    cells: dict[tuple[str, str], Cell]
    """(stack, release) -> cell; missing when the stack does not run the release."""


def fleet(backend: str, stacks: list[StackState]) -> Fleet:
    """Compare every stack's releases: the newest version of each, who is behind, versions with several digests."""
    names = sorted({r for s in stacks for r in (s.releases or {})})
    newest = {n: max((s.releases[n].version for s in stacks if s.releases and n in s.releases), key=version_key) for n in names}
    digests: dict[tuple[str, str], set[str]] = {}
    for s in stacks:
        for n, r in (s.releases or {}).items():
            digests.setdefault((n, r.version), set()).add(r.digest)
    cells = {}
    for s in stacks:
        for n, r in (s.releases or {}).items():
            cells[(s.name, n)] = Cell(r.version, r.digest, version_key(r.version) < version_key(newest[n]), len(digests[(n, r.version)]) > 1)
    return Fleet(backend=backend, stacks=stacks, releases=names, newest=newest, cells=cells)


def _last(s: StackState) -> dict[str, Any] | None:
    u = s.last
    if u is None:
        return None
    return {"kind": u.kind, "result": u.result, "start": iso(u.start), "end": iso(u.end), "ranBy": ran_by(u), "message": u.message, "commit": u.commit}


def fleet_json(f: Fleet) -> str:
    data = {
        "backend": f.backend,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "releases": f.releases,
        "newest": f.newest,
        "stacks": [{
            "name": s.name,
            "updateInProgress": s.in_progress,
            "lastUpdate": _last(s),
            "releases": {n: {"version": c.version, "digest": c.digest, "behind": c.behind, "digestDiffers": c.mixed}
                         for n in f.releases if (c := f.cells.get((s.name, n)))},
            "images": image_tags(s.releases),
        } for s in f.stacks],
    }
    return json.dumps(data, indent=2) + "\n"


def _summary(s: StackState) -> tuple[str, str, str]:
    u = s.last
    if u is None:
        return "never updated", "-", "-"
    result = f"{u.kind} {u.result}" + (" (update in progress)" if s.in_progress else "")
    return f"{when(u.end or u.start)} UTC", ran_by(u), result


def fleet_markdown(f: Fleet) -> str:
    head = ["stack", "last update", "by", "result", *f.releases, *PRODUCT_IMAGES]
    lines = [f"# Fleet: {len(f.stacks)} stacks in `{f.backend}`", "",
             "Per release the chart version and the digest's first 12 characters; `(behind)`: older than the newest any stack runs "
             "(" + ", ".join(f"{n} {v}" for n, v in f.newest.items()) + "); `(digest differs)`: that version runs with other content elsewhere. "
             "Image tags are those the astrago release was deployed with. Times UTC.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in f.stacks:
        cells = [c.text() if (c := f.cells.get((s.name, n))) else "-" for n in f.releases]
        tags = image_tags(s.releases)
        lines.append("| " + " | ".join(md(x) for x in [s.name, *_summary(s), *cells, *(tags[c] for c in PRODUCT_IMAGES)]) + " |")
    return "\n".join(lines) + "\n"


def fleet_html(f: Fleet) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in ["stack", "last update", "by", "result"]) + "".join(
        f"<th>{esc(n)}<br><span class='meta'>newest {esc(f.newest[n])}</span></th>" for n in f.releases) + "".join(f"<th>{esc(c)}</th>" for c in PRODUCT_IMAGES)
    rows = []
    for s in f.stacks:
        when_text, by, result = _summary(s)
        failed = s.last is not None and s.last.result != "succeeded"
        cells = []
        for n in f.releases:
            c = f.cells.get((s.name, n))
            if c is None:
                cells.append("<td class='meta'>-</td>")
                continue
            cls = "lag" if c.behind or c.mixed else "cur"
            note = (" <b>behind</b>" if c.behind else "") + (" <b>digest differs</b>" if c.mixed else "")
            cells.append(f"<td class='{cls}'>{esc(c.version)}<br><code title='{esc(c.digest)}'>{esc(c.digest[:12])}</code>{note}</td>")
        tags = image_tags(s.releases)
        rows.append(f"<tr data-stack='{esc(s.name)}'><td><b>{esc(s.name)}</b></td><td>{esc(when_text)}</td><td>{esc(by)}</td>"
                    f"<td class='{'lag' if failed else ''}'>{esc(result)}</td>{''.join(cells)}" + "".join(f"<td><code>{esc(tags[c])}</code></td>" for c in PRODUCT_IMAGES) + "</tr>")
    body = [f"<h1>Fleet: {len(f.stacks)} stacks</h1>",
            f"<p class='meta'>Backend <code>{esc(f.backend)}</code>; per release the chart version and digest each stack runs now. "
            "<span class='lag'>Red</span>: behind the newest version, or that version with other content elsewhere; <span class='cur'>green</span>: the newest. "
            "Times UTC; secrets never shown.</p>",
            f"<table id='fleet'><tr>{head}</tr>{''.join(rows)}</table>"]
    return page("Fleet", body)
