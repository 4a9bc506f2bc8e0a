"""The audit as one HTML page: a timeline of every update, newest first, readable at hundreds of updates.

One self-contained file (no external asset, no request: its Content-Security-Policy
allows none) that an auditor can archive or mail. Each update is one line; its
releases, environment and chart changes fold out (`<details>`). A small inline
script pages the timeline (50 updates a page) and filters it (failed only,
updates only), both kept in the address's fragment (`#page=2&filter=failed`) so
a view can be bookmarked; without scripts every update is listed, folded. Script
errors are written into the page itself (`data-script-errors` on the body and a
visible box), so a headless browser's DOM shows them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from model.history import History, ReleaseRecord, Update, changes_text, ran_by, when

PAGE_SIZE = 50
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:90em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-size:12px}.meta{color:#555}.note{background:#fff4d6;padding:.4em .8em;border-left:3px solid #e90}
.tl{border-left:3px solid #999;margin:1em 0 1em 1em;padding-left:1.5em}
.ev{position:relative;margin:0 0 .6em}.ev:before{content:"";position:absolute;left:-2.05em;top:.25em;width:.9em;height:.9em;border-radius:50%;background:#999}
.succeeded:before{background:#2a2}.failed:before{background:#c22}.in-progress:before{background:#e90}
.ev summary{cursor:pointer}.ev .res{font-weight:600}.failed .res{color:#c22}.succeeded .res{color:#2a2}
.bar{display:inline-block;height:.6em;background:#68a;vertical-align:middle;margin:0 .4em}
.chg{color:#735;font-size:13px}nav a{margin-right:.6em}nav a.current{font-weight:700;text-decoration:none;color:#222}
#script-errors{background:#fdd;border:1px solid #c22;padding:.5em;white-space:pre-wrap}
.lag{background:#fde8e8}.cur{background:#e8f6e8}#fleet code{white-space:nowrap}
"""
# First in <head>: records every later script error into the DOM.
ERROR_RECORDER = (
    "window.onerror=function(m,s,l){var b=document.body||document.documentElement;"
    "b.setAttribute('data-script-errors',String((+b.getAttribute('data-script-errors')||0)+1));"
    "var p=document.getElementById('script-errors');if(p){p.hidden=false;p.textContent+=m+' (line '+l+')\\n';}};"
)
PAGER = """(function(){
var PAGE=__PAGE__;var evs=[].slice.call(document.querySelectorAll('.tl .ev'));
var LABELS={all:'all',failed:'failed only',updates:'updates only'};
function params(){var p={};location.hash.replace(/^#/,'').split('&').forEach(function(kv){var i=kv.indexOf('=');if(i>0){p[kv.slice(0,i)]=decodeURIComponent(kv.slice(i+1));}});return p;}
function keep(e,f){return f==='all'||(f==='failed'&&e.getAttribute('data-result')!=='succeeded')||(f==='updates'&&e.getAttribute('data-kind')==='update');}
function link(text,hash,current){var a=document.createElement('a');a.href=hash;a.textContent=text;if(current){a.className='current';}return a;}
function apply(){
var p=params();var f=LABELS.hasOwnProperty(p.filter)?p.filter:'all';
var shown=evs.filter(function(e){return keep(e,f);});
var pages=Math.max(1,Math.ceil(shown.length/PAGE));var page=Math.min(Math.max(parseInt(p.page,10)||1,1),pages);
evs.forEach(function(e){e.hidden=true;});
var slice=shown.slice((page-1)*PAGE,page*PAGE);slice.forEach(function(e){e.hidden=false;});
var nav=document.getElementById('pager');nav.textContent='';
Object.keys(LABELS).forEach(function(k){nav.appendChild(link(LABELS[k],'#filter='+k,k===f));});
nav.appendChild(document.createTextNode(' | pages: '));
for(var i=1;i<=pages;i++){var first=shown[(i-1)*PAGE],last=shown[Math.min(i*PAGE,shown.length)-1];
nav.appendChild(link(first?first.getAttribute('data-number')+'\\u2013'+last.getAttribute('data-number'):'-','#page='+i+(f!=='all'?'&filter='+f:''),i===page));}
var b=document.body;b.setAttribute('data-page',String(page));b.setAttribute('data-pages',String(pages));
b.setAttribute('data-filter',f);b.setAttribute('data-shown',String(slice.length));b.setAttribute('data-ready','yes');}
window.addEventListener('hashchange',apply);apply();})();""".replace("__PAGE__", str(PAGE_SIZE))


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: Iterable[str], script: str = "") -> str:
    """A complete page in the audit's style: escaped title, the given body parts, an optional inline script."""
    return "".join([
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        f"<title>{esc(title)}</title><style>{STYLE}</style><script>{ERROR_RECORDER}</script></head><body>",
        "<pre id='script-errors' hidden></pre>", *body, f"<script>{script}</script>" if script else "", "</body></html>\n",
    ])


def chart_changes(before: dict[str, ReleaseRecord] | None, after: dict[str, ReleaseRecord] | None) -> list[str]:
    """Releases added, removed, or deployed with another chart version or digest, in short words."""
    if before is None or after is None:
        return []
    changes = [f"+{n}" for n in sorted(set(after) - set(before))] + [f"-{n}" for n in sorted(set(before) - set(after))]
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        if old.version != new.version:
            changes.append(f"{name} {old.version}\u2192{new.version}")
        elif old.digest != new.digest or old.extra != new.extra:
            changes.append(f"{name} same version, other content")
    return changes


def _event(u: Update, previous: dict[str, ReleaseRecord] | None, longest: int, is_open: bool) -> str:
    width = int(160 * (u.duration_s or 0) / longest)
    commit = f"<code>{esc(u.commit[:12])}</code>{' (dirty)' if u.dirty else ''}" if u.commit else "no commit recorded"
    took = "-" if u.duration_s is None else f"{u.duration_s} s"
    changed = chart_changes(previous, u.releases)
    parts = [f"<details class='ev {esc(u.result)}' id='u{u.number}' data-number='{u.number}' data-result='{esc(u.result)}' data-kind='{esc(u.kind)}'{' open' if is_open else ''}>",
             f"<summary><b>#{u.number} {esc(u.kind)}</b> <span class='res'>{esc(u.result)}</span> · {esc(when(u.start))} UTC"
             f"<span class='bar' style='width:{width}px'></span>{esc(took)} · {esc(ran_by(u))} · {commit} · {esc(u.message)}"
             + (f" <span class='chg'>charts: {esc(', '.join(changed))}</span>" if changed else "") + "</summary>",
             f"<div class='meta'>start {esc(when(u.start))}, end {esc(when(u.end))} · resource changes: {esc(changes_text(u.resource_changes))}"
             + (f" · branch {esc(u.environment['git.headName'])}" if u.environment.get("git.headName") else "")
             + (f" · CI {esc(u.environment['ci.system'])}" if u.environment.get("ci.system") else "") + "</div>"]
    if u.releases is None:
        parts.append("<p class='meta'>The state after this update cannot be read from this backend.</p>")
    elif not u.releases:
        parts.append("<p class='meta'>No release deployed after this update.</p>")
    else:
        parts.append("<table><tr><th>release</th><th>namespace</th><th>chart</th><th>version</th><th>digest (sha256)</th><th>status</th><th>revision</th></tr>")
        for r in u.releases.values():
            parts.append(f"<tr><td>{esc(r.name)}</td><td>{esc(r.namespace)}</td><td><code>{esc(r.chart)}</code></td><td>{esc(r.version)}</td>"
                         f"<td><code title='{esc(r.digest)}'>{esc(r.digest[:16])}…</code></td><td>{esc(r.status)}</td><td>{esc(r.revision if r.revision is not None else '-')}</td></tr>")
        parts.append("</table>")
    parts.append("</details>")
    return "".join(parts)


def report_html(history: History) -> str:
    """The timeline page: newest update first, the newest folded out, 50 a page with scripts on."""
    updates = history.updates
    longest = max([u.duration_s or 0 for u in updates] + [1])
    failed = sum(1 for u in updates if u.result != "succeeded")
    body = [f"<h1>Audit of stack <code>{esc(history.stack)}</code></h1>",
            f"<p class='meta'>Project {esc(history.project)}, backend <code>{esc(history.backend)}</code>; {len(updates)} updates "
            f"({failed} not succeeded), numbered from 1 (oldest), newest first; times UTC; secrets never shown.</p>",
            *[f"<p class='note'>{esc(n)}</p>" for n in history.notes],
            f"<nav id='pager'>all {len(updates)} updates listed; each folds out</nav><div class='tl'>"]
    previous: list[dict[str, ReleaseRecord] | None] = [None]
    for u in updates[:-1]:
        previous.append(u.releases if u.releases is not None else previous[-1])
    for index in range(len(updates) - 1, -1, -1):
        body.append(_event(updates[index], previous[index], longest, index == len(updates) - 1))
    body.append("</div>")
    return page(f"Audit of {history.stack}", body, PAGER)
