"""Typed state of the iptables backend: what policyc's part of a node's
ipsets, iptables/ip6tables tables and ebtables ``nat`` table holds.

    IptablesState(sets=(IpSet, ...), tables=(Table, ...))
    Table(tool, name, chains=(Chain, ...), hooks=(HookJump, ...))
    Chain(name, policy, body=(Rule | Note, ...))
    Rule(args=("-m", "set", "--match-set", "policyc-x", "src", ...), target=("-j", "DROP"))

A rule's tokens are those ``iptables-save`` prints, unquoted, so the state
``restore.read_*`` decodes from the kernel equals the rendered one.  Notes
(``#`` lines of ``compile``'s text) and set comments are for readers only:
they take no part in equality, since the kernel does not keep them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from policyc.chains import Chain as LoweredChain
from policyc.ir import SetDef

# "POLICYC-": every chain of policyc's, in iptables, ip6tables and ebtables.
CHAIN_PREFIX = "POLICYC-"
SET_PREFIX = "policyc-"
TMP_PREFIX = "policyc-t-"  # staging copies, swapped with the live set
OLD_PREFIX = "policyc-o-"  # a live set of another type, renamed away


class Tool(StrEnum):
    IPTABLES = "iptables"
    IP6TABLES = "ip6tables"
    EBTABLES = "ebtables"


@dataclass(frozen=True, slots=True)
class Note:
    """A ``#`` line of ``compile``'s text (not kept by the kernel)."""

    text: str


# iptables-save prints these first, in this order, then the matches in order.
IP_OPTIONS = ("-s", "-d", "-i", "-o", "-p")


def canonical(args: tuple[str, ...]) -> tuple[str, ...]:
    """Rule tokens in the order iptables-save prints them: ``-s -d -i -o -p``
    (each with a leading ``!``) first, the matches after, and without the
    ``-m tcp`` that save adds after ``-p tcp`` (implied by ``--dport``)."""
    head: dict[str, tuple[str, ...]] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        neg = args[i] == "!" and args[i + 1 : i + 2] in [(o,) for o in IP_OPTIONS]
        j = i + 1 if neg else i
        if args[j] in IP_OPTIONS and j + 1 < len(args) and args[j] not in head:
            head[args[j]] = (("!",) if neg else ()) + (args[j], args[j + 1])
            i = j + 2
        else:
            rest.append(args[i])
            i += 1
    proto = head["-p"][-1] if "-p" in head else None
    out: list[str] = []
    k = 0
    while k < len(rest):
        if rest[k] == "-m" and rest[k + 1 : k + 2] == [proto]:
            k += 2
            continue
        out.append(rest[k])
        k += 1
    return tuple(t for o in IP_OPTIONS for t in head.get(o, ())) + tuple(out)


@dataclass(frozen=True, slots=True)
class Rule:
    """``-A CHAIN <args> <target>``: the renderer's tokens (compile's text);
    compared in iptables-save's order (``key``), so a rule read back from
    the kernel equals the rendered one."""

    args: tuple[str, ...]
    target: tuple[str, ...]  # ("-j", "RETURN") | ("-g", "POLICYC-X")

    def key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (canonical(self.args), self.target)


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    policy: str  # "-" for iptables user chains, "RETURN" for ebtables
    body: tuple[Rule | Note, ...]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.body if isinstance(r, Rule))

    def key(self) -> tuple[object, ...]:
        return (self.name, self.policy, tuple(r.key() for r in self.rules))


@dataclass(frozen=True, slots=True)
class HookJump:
    """``-I <builtin> 1 -j <chain>``: where the kernel enters a policyc chain.

    ``first``: the jump is rule 1 of its builtin chain.  The renderer's hooks
    are always first; ``restore.read_tables`` sets False for a jump some other
    rule precedes, which makes it differ from the rendered one (drift), so
    ``diff`` deletes and re-inserts it.  iptables(8): "-I, --insert chain
    [rulenum] ... rules are inserted as the head of the chain" -- an earlier
    foreign ``-j ACCEPT`` would end the builtin chain before policy runs.
    """

    builtin: str
    chain: str
    first: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    tool: Tool
    name: str  # raw | filter | nat (ebtables)
    chains: tuple[Chain, ...]
    hooks: tuple[HookJump, ...]

    def chain(self, name: str) -> Chain | None:
        return next((c for c in self.chains if c.name == name), None)

    def key(self) -> tuple[object, ...]:
        return (
            self.tool,
            self.name,
            tuple(sorted(c.key() for c in self.chains)),
            tuple(sorted((h.builtin, h.chain, h.first) for h in self.hooks)),
        )


@dataclass(frozen=True, slots=True)
class IpSet:
    """One ipset: ``create <name> <type> family <family> [maxelem N]``."""

    name: str
    type: str  # hash:ip | hash:net | hash:ip,port
    family: str  # inet | inet6
    maxelem: int | None  # None: ipset's default
    elements: tuple[str, ...]  # as ipset save prints them, in render order
    comment: str = field(default="", compare=False)

    @property
    def options(self) -> tuple[str, ...]:
        opts = ("family", self.family)
        return opts + (("maxelem", str(self.maxelem)) if self.maxelem else ())

    def key(self) -> tuple[object, ...]:
        return (self.name, self.type, self.family, self.maxelem, frozenset(self.elements))


@dataclass(frozen=True, slots=True)
class BridgeSource:
    """The lowered bridge (anti-spoofing) chains and their per-port sets, as
    rendered: ``diff.patch`` re-renders only these chains on a pod event."""

    chains: tuple[LoweredChain, ...]
    sets: tuple[SetDef, ...]


@dataclass(frozen=True, slots=True, eq=False)
class IptablesState:
    """policyc's sets and tables; equal when every set, element, chain, rule
    body and hook is (order of sets, tables, chains and elements aside).

    ``bridge``: what the anti-spoofing chains were rendered from (None for a
    state read from the kernel); no part of equality."""

    sets: tuple[IpSet, ...]
    tables: tuple[Table, ...]
    bridge: BridgeSource | None = None

    def key(self) -> tuple[object, ...]:
        return (
            frozenset(s.key() for s in self.sets),
            tuple(sorted(t.key() for t in self.tables if t.chains or t.hooks)),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IptablesState) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def set(self, name: str) -> IpSet | None:
        return next((s for s in self.sets if s.name == name), None)

    def table(self, tool: Tool, name: str) -> Table | None:
        return next((t for t in self.tables if (t.tool, t.name) == (tool, name)), None)

    def size(self) -> dict[str, int]:
        return {
            "rules": sum(len(c.rules) for t in self.tables for c in t.chains),
            "sets": len(self.sets),
            "elements": sum(len(s.elements) for s in self.sets),
        }


EMPTY = IptablesState((), ())
