"""Whitelist grammars of the restore formats policyc writes.

A line that matches none of a format's shapes is a finding: it could be read
by the restore tool as a command policyc never meant to write.  Each format
also has the line limit of the tool that reads it; the limit counts the
newline, as ``fgets`` does.

- ``ipset restore`` (ipset 7.x ``ipset.c``: ``char buffer[1024]`` read with
  ``fgets``) "reads a line of at most 1,023 bytes and runs the rest as the
  next command" (issue 13 §1).
- ``iptables-restore`` / ``ip6tables-restore`` / ``ebtables-restore``
  (iptables 1.8.9 ``xtables-restore.c``: ``char buffer[10240]``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

IPSET_LINE_MAX = 1023
XTABLES_LINE_MAX = 10239

# Printable text in a comment: no C0, DEL or C1 control characters.
_TEXT = r"[^\x00-\x1f\x7f-\x9f]*"
_COMMENT = re.compile(rf"# {_TEXT}|#")
_SETNAME = r"policyc-[A-Za-z0-9_.-]{1,23}"
_IPSET_TYPE = r"hash:(?:ip|net|mac)(?:,(?:port|ip|net))*|list:set|bitmap:port"
_IPSET_OPTS = r"(?: (?:family inet6?|maxelem \d+|hashsize \d+|timeout \d+|comment|counters))*"
_ELEM = r"[0-9A-Za-z:./,-]+(?: nomatch)?"
IPSET_LINE = re.compile(
    "|".join(
        [
            _COMMENT.pattern,
            rf"create {_SETNAME} (?:{_IPSET_TYPE}){_IPSET_OPTS}(?: -exist)?",
            rf"(?:flush|destroy) {_SETNAME}",
            rf"swap {_SETNAME} {_SETNAME}",
            rf"(?:add|del) {_SETNAME} {_ELEM}(?: -exist)?",
        ]
    )
)

# iptables-save format: a table, a chain with its policy, a rule, COMMIT.
_CHAIN = r"[A-Za-z0-9_.+-]{1,28}"
_QUOTED = r'"(?:[^"\\\x00-\x1f\x7f-\x9f]|\\[^\x00-\x1f])*"'
_WORD = r"[A-Za-z0-9_.:/,+!=@-]+"
_RULE = rf"-[AID] {_CHAIN}(?: (?:{_WORD}|{_QUOTED}))*"
XTABLES_LINE = re.compile(
    "|".join(
        [
            _COMMENT.pattern,
            r"\*(?:raw|filter|mangle|nat|security|broute)",
            rf":{_CHAIN} (?:-|ACCEPT|DROP|RETURN|CONTINUE)(?: \[\d+:\d+\])?",
            r"COMMIT",
            _RULE,
        ]
    )
)


class Format(enum.StrEnum):
    """The files ``compile --backend iptables -o DIR`` writes."""

    IPSET = "ipset.restore"
    IPTABLES = "iptables.rules"
    IP6TABLES = "ip6tables.rules"
    EBTABLES = "ebtables.rules"


GRAMMARS = {
    Format.IPSET: (IPSET_LINE, IPSET_LINE_MAX),
    Format.IPTABLES: (XTABLES_LINE, XTABLES_LINE_MAX),
    Format.IP6TABLES: (XTABLES_LINE, XTABLES_LINE_MAX),
    Format.EBTABLES: (XTABLES_LINE, XTABLES_LINE_MAX),
}


@dataclass(frozen=True, slots=True)
class LineFault:
    """One offending line: 1-based number, byte length, and why."""

    fmt: Format
    lineno: int
    length: int
    why: str  # "too-long" | "grammar"
    line: str


def check_lines(fmt: Format, data: bytes) -> list[LineFault]:
    """Every line of ``data`` must fit the tool's limit and match the grammar."""
    pattern, limit = GRAMMARS[fmt]
    faults = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw:
            continue
        text = raw.decode("utf-8", "backslashreplace")
        if len(raw) + 1 > limit:
            faults.append(LineFault(fmt, n, len(raw) + 1, "too-long", text[:120]))
        if not pattern.fullmatch(text):
            faults.append(LineFault(fmt, n, len(raw) + 1, "grammar", text[:200]))
    return faults


# nft: a whitelist of shapes would be the whole nft grammar; instead every
# line must be free of control characters (bar leading tabs) and every
# quoted string and comment must stay on its line, which is what an
# injection needs to break.
_BARE = r'[^#"\x00-\x1f\x7f-\x9f]*'
_NFT_LINE = re.compile(rf"\t*(?:# {_TEXT}|#|#!/usr/sbin/nft -f|{_BARE}(?:{_QUOTED}{_BARE})*)")


def check_nft(data: bytes) -> list[str]:
    """Lines of an nft script that could carry injected statements."""
    bad = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        text = raw.decode("utf-8", "backslashreplace")
        if not _NFT_LINE.fullmatch(text):
            bad.append(f"{n}: {text[:200]!r}")
    return bad
