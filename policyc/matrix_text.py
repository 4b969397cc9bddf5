"""The reachability matrix as terminal text.

Rows are source pods, numbered; columns are the destination pods, headed by
the same numbers (the row labels are the column legend), grouped by
namespace.  When the columns do not fit in ``width`` characters they wrap
into blocks, so 57 pods make several screen-wide blocks instead of one
1,500-character line::

    legend: . allowed ...  X denied
                x      y
                1 2 3  4 5 6
      1 x/a     . . .  X X X
"""

from __future__ import annotations

from collections.abc import Sequence

from policyc.matrix import AUDITED_NOTE, LEGEND, Mark, Matrix

# ANSI SGR colours per mark (ECMA-48); only used on a terminal.
COLOURS: dict[Mark, str] = {
    Mark.ALLOWED: "32",  # green
    Mark.DENIED: "1;31",  # bold red
    Mark.ONLY_V4: "33",  # yellow
    Mark.ONLY_V6: "33",
    Mark.NO_PORT: "2",  # dim
    Mark.NO_FAMILY: "2",
}
DEFAULT_WIDTH = 100
GAP = "  "  # between namespace groups


def _paint(mark: Mark, text: str, colour: bool) -> str:
    return f"\x1b[{COLOURS[mark]}m{text}\x1b[0m" if colour else text


def _groups(m: Matrix) -> list[tuple[str, list[int]]]:
    """Column indexes grouped by namespace, in order."""
    out: list[tuple[str, list[int]]] = []
    for j, pod in enumerate(m.pods):
        if not out or out[-1][0] != pod.namespace:
            out.append((pod.namespace, []))
        out[-1][1].append(j)
    return out


def _blocks(
    groups: list[tuple[str, list[int]]], cell: int, room: int
) -> list[list[tuple[str, list[int]]]]:
    """Pack namespace groups into blocks at most ``room`` characters wide,
    splitting a group that alone does not fit."""
    per_line = max(1, (room + 1) // (cell + 1))
    blocks: list[list[tuple[str, list[int]]]] = [[]]
    used = 0
    for ns, cols in groups:
        for k in range(0, len(cols), per_line):
            part = cols[k : k + per_line]
            need = len(part) * (cell + 1) - 1 + (len(GAP) if blocks[-1] else 0)
            if blocks[-1] and used + need > room:
                blocks.append([])
                used, need = 0, need - len(GAP)
            blocks[-1].append((ns, part))
            used += need
    return blocks


def _legend(m: Matrix, colour: bool) -> list[str]:
    seen = {c.mark for row in m.cells for c in row} | {Mark.ALLOWED, Mark.DENIED}
    lines = [AUDITED_NOTE] if m.audited else []
    lines += [
        f"port {m.query}: row pod -> column pod (columns are numbered as the rows), "
        f"{len(m.pods)} pods",
        "legend:",
    ]
    for mark in Mark:
        if mark in seen:
            lines.append(f"  {_paint(mark, mark.value, colour)}  {LEGEND[mark]}")
    return lines


def _ns_heads(block: Sequence[tuple[str, list[int]]], cell: int) -> list[str]:
    """The namespace header lines of a block: one line when every name fits
    over its columns; else each name starts above its first column, on the
    first line where it clears the name before it (a name is never clipped:
    ``kube-system`` over one column used to read ``ku``)."""
    widths = [len(cols) * (cell + 1) - 1 for _, cols in block]
    if all(len(ns) <= w for (ns, _), w in zip(block, widths, strict=True)):
        return [GAP.join(ns.ljust(w) for (ns, _), w in zip(block, widths, strict=True))]
    heads: list[str] = []
    start = 0
    for (ns, _), w in zip(block, widths, strict=True):
        line = next((k for k, h in enumerate(heads) if len(h) < start), None)
        if line is None:
            heads.append("")
            line = len(heads) - 1
        heads[line] = heads[line].ljust(start) + ns
        start += w + len(GAP)
    return heads


def _block_lines(
    m: Matrix, block: Sequence[tuple[str, list[int]]], labels: list[str], cell: int, colour: bool
) -> list[str]:
    pad = max(len(s) for s in labels)
    idx_head = GAP.join(" ".join(str(j + 1).rjust(cell) for j in cols) for _, cols in block)
    lines = [(" " * pad + "  " + head).rstrip() for head in _ns_heads(block, cell)]
    lines.append(" " * pad + "  " + idx_head)
    prev = None
    for i, row in enumerate(m.cells):
        ns = m.pods[i].namespace
        if prev is not None and ns != prev:
            lines.append("")
        prev = ns
        cells = GAP.join(
            " ".join(_paint(row[j].mark, row[j].mark.value.rjust(cell), colour) for j in cols)
            for _, cols in block
        )
        lines.append(labels[i].ljust(pad) + "  " + cells)
    return lines


def matrix_text(m: Matrix, width: int = DEFAULT_WIDTH, colour: bool = False) -> str:
    """``m`` as text lines of at most ``width`` characters where the row
    labels leave room for one column (ANSI colour codes not counted)."""
    lines = _legend(m, colour)
    if not m.pods:
        return "\n".join(lines + ["", "no pods with an address match the filters"]) + "\n"
    cell = len(str(len(m.pods)))
    labels = [f"{str(i + 1).rjust(cell)} {p.namespace}/{p.name}" for i, p in enumerate(m.pods)]
    room = width - max(len(s) for s in labels) - 2
    blocks = _blocks(_groups(m), cell, room)
    for b, block in enumerate(blocks):
        lines.append("")
        if len(blocks) > 1:
            first, last = block[0][1][0] + 1, block[-1][1][-1] + 1
            lines.append(f"columns {first}-{last} (block {b + 1} of {len(blocks)}):")
        lines.extend(_block_lines(m, block, labels, cell, colour))
    return "\n".join(lines) + "\n"
