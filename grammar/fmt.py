"""``policyc fmt``: the canonical layout of a ``.pol`` text.

The text is parsed and validated like ``policyc compile`` does (InputError /
InputErrors on bad input), each policy is written back by
:func:`grammar.convert.policy_text`, in file order, one blank line apart.

Comments are kept, in order, but the layout moves them: each comment goes
just before the first policy that starts on or after its line (a comment
inside a block moves above the next block; after the last block, to the
end).  Formatting is idempotent: formatted text formats to itself.
"""

from __future__ import annotations

import os
import re
import sys

from grammar.convert import policy_text
from grammar.policylang import parse_policies
from policyc.errors import InputError, Location
from policyc.model import NetworkPolicy
from policyc.parse import read_all

_COMMENT = re.compile(r"#[^\n]*")  # COMMENT in policy.lark


def _comments(text: str) -> list[tuple[int, str]]:
    """(line, comment) of every ``#`` comment, by a scan that skips nothing:
    the grammar's selector terminals exclude ``#``, so each ``#`` starts one."""
    return [
        (text.count("\n", 0, m.start()) + 1, m.group().rstrip()) for m in _COMMENT.finditer(text)
    ]


def format_pol(text: str, file: str = "<policy>") -> str:
    """``text`` in canonical layout; raises InputError(s) as compile would."""
    raws = parse_policies(text, file)
    policies = [p for p in read_all(raws) if isinstance(p, NetworkPolicy)]
    starts = [raw.loc(()).line for raw in raws]
    comments = _comments(text)
    blocks: list[str] = []
    taken = 0
    for start, policy in zip(starts, policies, strict=True):
        lead = []
        while taken < len(comments) and comments[taken][0] <= start:
            lead.append(comments[taken][1] + "\n")
            taken += 1
        blocks.append("".join(lead) + policy_text(policy))
    tail = "".join(c + "\n" for _, c in comments[taken:])
    if tail:
        blocks.append(tail)
    return "\n".join(blocks)


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
