"""``policyc fmt``: the canonical layout of a ``.pol`` text.

The text is parsed and validated like ``policyc compile`` does (InputError /
InputErrors on bad input), and each policy is written back by
:func:`grammar.convert.policy_lines`, in file order, one blank line apart.

Comments are kept, in order.  A comment at the end of a line that writes
something (the ``policy`` head, ``select``, an ``allow`` rule) stays at the
end of that line; any other comment goes on its own line just above the
first such line at or after it (so one beside a brace or a section head
moves down to the next rule; after the last, to the end of the file).
Formatting is idempotent: formatted text formats to itself.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

from grammar.convert import policy_lines
from grammar.policylang import parse_policies
from policyc.errors import InputError, Location
from policyc.model import NetworkPolicy
from policyc.parse import read_all

_COMMENT = re.compile(r"#[^\n]*")  # COMMENT in policy.lark


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    text: str
    trailing: bool  # code precedes it on its line


@dataclass(slots=True)
class _Out:
    text: str
    anchor: int | None  # the source line of what the line writes
    above: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    blank_before: bool = False


def comments(text: str) -> list[Comment]:
    """Every ``#`` comment: the grammar's selector terminals exclude ``#``,
    so each ``#`` starts one."""
    out = []
    for m in _COMMENT.finditer(text):
        start = text.rfind("\n", 0, m.start()) + 1
        line = text.count("\n", 0, m.start()) + 1
        out.append(Comment(line, m.group().rstrip(), bool(text[start : m.start()].strip())))
    return out


def format_pol(text: str, file: str = "<policy>") -> str:
    """``text`` in canonical layout; raises InputError(s) as compile would."""
    raws = parse_policies(text, file)
    policies = [p for p in read_all(raws) if isinstance(p, NetworkPolicy)]
    out: list[_Out] = []
    for raw, policy in zip(raws, policies, strict=True):
        for i, (line, path) in enumerate(policy_lines(policy)):
            loc = raw.locs.get((*raw.prefix, *path)) if path is not None else None
            out.append(_Out(line, loc.line if loc else None, blank_before=bool(out) and i == 0))
    tail = _place(comments(text), out)
    lines: list[str] = []
    for o in out:
        if o.blank_before:
            lines.append("")
        indent = o.text[: len(o.text) - len(o.text.lstrip())]
        lines.extend(indent + c for c in o.above)
        lines.append("  ".join([o.text, *o.after]))
    if tail:
        lines.extend([""] * bool(lines) + tail)
    return "".join(line + "\n" for line in lines)


def _place(found: list[Comment], out: list[_Out]) -> list[str]:
    """Attach each comment to an output line; the ones after every anchor
    are returned (they end the file)."""
    tail: list[str] = []
    for c in found:
        same = [o for o in out if c.trailing and o.anchor == c.line]
        if same:
            same[-1].after.append(c.text)
            continue
        later = next((o for o in out if o.anchor is not None and o.anchor >= c.line), None)
        if later is None:
            tail.append(c.text)
        else:
            later.above.append(c.text)
    return tail


def pol_files(paths: list[str]) -> list[str]:
    """Files to format: each path, and the ``.pol`` files under a directory
    (recursive, sorted); ``-`` is stdin.  InputError for a missing path."""
    files: list[str] = []
    for path in paths:
        if path != "-" and not os.path.exists(path):
            raise InputError("no such file or directory", loc=Location(path, 0, 0))
        if not os.path.isdir(path):
            files.append(path)
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".pol"))
    return files


def format_paths(paths: list[str]) -> list[tuple[str, str, str]]:
    """(path, text, formatted text) of every file of :func:`pol_files`; every
    file is read and checked before the caller writes any, so bad input in
    one file changes none."""
    out = []
    for path in pol_files(paths):
        if path == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read: {exc}", loc=Location(path, 1, 1)) from None
        out.append((path, text, format_pol(text, "<stdin>" if path == "-" else path)))
    return out
