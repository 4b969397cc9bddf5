"""Self-contained HTML pages for ``matrix -o html`` and ``graph -o html``.

Everything a page needs is inline (CSS, SVG, a little JavaScript): it opens
from a file or an air-gapped machine and fetches nothing.  Each page's
script marks ``<body data-ready="1">`` and fills ``#summary`` once it has
run, which the headless-Chromium test reads back from the DOM.
"""

from __future__ import annotations

import re
from html import escape

from policyc.matrix import AUDITED_NOTE, LEGEND, Cell, Mark, Matrix

MARK_CLASS: dict[Mark, str] = {
    Mark.ALLOWED: "allow",
    Mark.DENIED: "deny",
    Mark.ONLY_V4: "part",
    Mark.ONLY_V6: "part",
    Mark.NO_PORT: "none",
    Mark.NO_FAMILY: "none",
}

CSS = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 16px; margin: 0 0 .5em; }
#summary { color: #555; margin: .3em 0 .8em; }
table.legend td { padding: 1px 8px 1px 0; }
table.m { border-collapse: collapse; font-family: monospace; }
table.m th, table.m td { border: 1px solid #ddd; padding: 2px 5px; text-align: center; }
table.m th.row { text-align: left; white-space: nowrap; }
table.m th.row { position: sticky; left: 0; background: #fafafa; }
table.m thead th { position: sticky; background: #fafafa; }
table.m tr.nsrow th { top: 0; }
table.m tr.idx th { top: 1.55em; }
table.m td { min-width: 1.2em; }
table.m th.ns { border-left: 2px solid #999; }
table.m td.first { border-left: 2px solid #999; }
td.allow { background: #d8f0d8; color: #185e18; }
td.deny { background: #f6d2d2; color: #8a1010; font-weight: bold; }
td.part { background: #fbeec2; color: #6b5200; }
td.none { background: #eee; color: #888; }
.hl { outline: 2px solid #3a6fd8; }
svg .dim { opacity: .15; }
#graph svg { max-width: 100%; height: auto; }
svg g.node { cursor: pointer; }
"""

MATRIX_JS = """
(function () {
  var table = document.getElementById('m') || document.createElement('table');
  var cells = table.querySelectorAll('td[data-r]');
  var counts = {};
  cells.forEach(function (td) {
    counts[td.textContent] = (counts[td.textContent] || 0) + 1;
    td.addEventListener('mouseenter', function () { mark(td, true); });
    td.addEventListener('mouseleave', function () { mark(td, false); });
  });
  function mark(td, on) {
    var r = td.dataset.r, c = td.dataset.c;
    table.querySelectorAll('[data-r="' + r + '"],[data-c="' + c + '"]').forEach(function (x) {
      x.classList.toggle('hl', on);
    });
  }
  var parts = Object.keys(counts).sort().map(function (k) { return k + ' ' + counts[k]; });
  document.getElementById('summary').textContent =
    cells.length + ' cells: ' + parts.join(', ');
  document.body.dataset.ready = '1';
})();
"""

GRAPH_JS = """
(function () {
  var svg = document.querySelector('#graph svg');
  var nodes = {}, edges = [];
  svg.querySelectorAll('g.node').forEach(function (g) {
    nodes[g.querySelector('title').textContent] = g;
  });
  svg.querySelectorAll('g.edge').forEach(function (g) {
    var ends = g.querySelector('title').textContent.split('->');
    edges.push({g: g, a: ends[0], b: ends[1]});
  });
  var chosen = null;
  Object.keys(nodes).forEach(function (id) {
    nodes[id].addEventListener('click', function () {
      chosen = chosen === id ? null : id;
      var near = {};
      near[id] = true;
      edges.forEach(function (e) {
        var on = chosen === null || e.a === id || e.b === id;
        if (on) { near[e.a] = near[e.b] = true; }
        e.g.classList.toggle('dim', !on);
      });
      Object.keys(nodes).forEach(function (n) {
        nodes[n].classList.toggle('dim', chosen !== null && !near[n]);
      });
    });
  });
  document.getElementById('summary').textContent = Object.keys(nodes).length +
    ' nodes, ' + edges.length + ' edges (click a node to show its neighbours)';
  document.body.dataset.ready = '1';
})();
"""


def page(title: str, body: str, script: str) -> str:
    """A complete HTML5 document with ``body`` and ``script`` inline."""
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n<div id=summary></div>\n{body}\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )


def _tip(m: Matrix, i: int, j: int, c: Cell) -> str:
    src, dst = m.pods[i], m.pods[j]
    head = f"{src.namespace}/{src.name} -> {dst.namespace}/{dst.name}"
    if c.port is None:
        return f"{head}: {LEGEND[c.mark]}"
    fams = [
        f"{name} {'allowed' if v else 'denied'}"
        for name, v in (("IPv4", c.v4), ("IPv6", c.v6))
        if v is not None
    ]
    return f"{head} {c.port}/{c.protocol}: " + (", ".join(fams) or LEGEND[c.mark])


def _legend_table() -> str:
    rows = "".join(
        f"<tr><td class={MARK_CLASS[m]}>{escape(m.value)}</td><td>{escape(t)}</td></tr>"
        for m, t in LEGEND.items()
    )
    return f"<table class=legend>{rows}</table>"


def _head(m: Matrix, starts: set[int]) -> str:
    """Two header rows: the namespaces (spanning their pods), then the
    column numbers (a pod's number is its row's)."""
    spans: list[tuple[str, int]] = []
    for j, p in enumerate(m.pods):
        if j in starts:
            spans.append((p.namespace, 0))
        spans[-1] = (spans[-1][0], spans[-1][1] + 1)
    ns = "".join(f"<th class=ns colspan={n}>{escape(name)}</th>" for name, n in spans)
    idx = "".join(
        f"<th{' class=ns' if j in starts else ''} data-c={j} "
        f"title='{escape(p.namespace + '/' + p.name)}'>{j + 1}</th>"
        for j, p in enumerate(m.pods)
    )
    return (
        f"<thead><tr class=nsrow><th class=row></th>{ns}</tr>"
        f"<tr class=idx><th class=row>from \\ to</th>{idx}</tr></thead>"
    )


def matrix_html(m: Matrix) -> str:
    """The matrix as a page: rows are sources, columns destinations; each
    cell's tooltip gives the per-family verdicts."""
    starts = {j for j, p in enumerate(m.pods) if j == 0 or m.pods[j - 1].namespace != p.namespace}
    rows = []
    for i, row in enumerate(m.cells):
        p = m.pods[i]
        tds = "".join(
            f"<td class='{MARK_CLASS[c.mark]}{' first' if j in starts else ''}' data-r={i} "
            f"data-c={j} title='{escape(_tip(m, i, j, c))}'>{escape(c.mark.value)}</td>"
            for j, c in enumerate(row)
        )
        rows.append(
            f"<tr><th class=row data-r={i}>{i + 1} {escape(p.namespace)}/"
            f"{escape(p.name)}</th>{tds}</tr>"
        )
    table = (
        f"<table class=m id=m>{_head(m, starts)}<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )
    if not m.pods:
        table = "<p>No pods with an address match the filters.</p>"
    title = f"policyc matrix: port {m.query}" + (" (audited)" if m.audited else "")
    note = f"<p class=note>{escape(AUDITED_NOTE)}</p>\n" if m.audited else ""
    return page(title, note + _legend_table() + "\n<p></p>\n" + table, MATRIX_JS)


def inline_svg(svg: str) -> str:
    """Graphviz's SVG document as an element to inline in HTML: no XML
    prolog, DOCTYPE or comments, and no namespace URIs (HTML knows <svg>)."""
    svg = re.sub(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return svg.strip()


def graph_html(svg: str, title: str) -> str:
    """The rule graph page around Graphviz's SVG output."""
    return page(title, f"<div id=graph>{inline_svg(svg)}</div>", GRAPH_JS)
