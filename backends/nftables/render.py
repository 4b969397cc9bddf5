"""The lowered ruleset as the State of policyc's two tables (no text, no I/O).

The inet table carries a revision marker: a chain whose one rule's comment
is a hash of every chain and set header.  An agent that restarts reads it
back and knows the kernel's chains are the ones it would program.
"""

from __future__ import annotations

import hashlib

from backends.nftables import dialect, printer
from backends.nftables.objects import Chain, Rule, State, Table, Verdict
from policyc import chains as low
from policyc.chains import Ruleset, Verb
from policyc.ir import SetDef
from policyc.names import TABLE

REV_CHAIN = "policyc_rev"
REV_PREFIX = "rev "


def _table(family: str, sets: tuple[SetDef, ...], chains: tuple[low.Chain, ...]) -> Table:
    out = {s.name: dialect.set_(s, family, TABLE) for s in sets}
    for name, fam in sorted(dialect.meters(chains).items()):  # --log-drops rate meters
        out[name] = dialect.meter_set(name, fam, family, TABLE)
    return Table(family, TABLE, out, {c.name: dialect.chain(c, family, TABLE) for c in chains})


def revision_of(tables: tuple[Table, ...]) -> str:
    """A hash of every chain (header and rules) and every set header, over
    their printed text (the printer is exact and cheaper than ``repr``)."""
    h = hashlib.sha1()
    for t in tables:
        for c in sorted(t.chains):
            h.update("\n".join(printer.chain_text(t.chains[c])).encode())
        for n in sorted(t.sets):
            h.update("\n".join(printer.set_text(t.sets[n].header())).encode())
    return h.hexdigest()[:16]


def revision(state: State) -> str:
    """The marker a state carries ("" without one)."""
    first = state.tables[0] if state.tables else None
    chain = first.chains.get(REV_CHAIN) if first is not None else None
    if chain is None or len(chain.rules) != 1:
        return ""
    return chain.rules[0].comment.removeprefix(REV_PREFIX)


def with_revision(tables: tuple[Table, ...]) -> State:
    first = tables[0]
    rule = Rule(
        first.family, TABLE, REV_CHAIN, (Verdict(Verb.RETURN),), REV_PREFIX + revision_of(tables)
    )
    chains = {**first.chains, REV_CHAIN: Chain(first.family, TABLE, REV_CHAIN, (rule,))}
    return State((Table(first.family, TABLE, first.sets, chains), *tables[1:]))


def render(ruleset: Ruleset) -> State:
    """Ruleset → State: ``inet policyc`` (forward) and ``bridge policyc``."""
    return with_revision(
        (
            _table("inet", ruleset.sets, ruleset.forward),
            _table("bridge", ruleset.bridge_sets, ruleset.bridge),
        )
    )
