"""Optimiser passes over the rule graph: each a pure ``name(graph) -> graph``.

Every pass keeps the set of accepted packets unchanged; tests compare the
optimised and unoptimised rulesets on the kernel and against the evaluator.
"""

from __future__ import annotations

from policyc.ir import RuleGraph
from policyc.passes.aggregate_cidrs import aggregate_cidrs
from policyc.passes.concat_lookups import concat_lookups
from policyc.passes.dedupe_rules import dedupe_rules
from policyc.passes.drop_unused_sets import drop_unused_sets
from policyc.passes.hash_cons_sets import hash_cons_sets
from policyc.passes.merge_port_intervals import merge_port_intervals
from policyc.passes.share_chains import share_chains
from policyc.passes.subsume_rules import subsume_rules

# Names first (so equal sets compare equal), then unions of static sets (so
# more rules coincide), then exact copies (cheap, by key), then rules
# another covers (pairwise), then each group chain's ipBlock and port
# rules as one lookup per shape, then group chains whose rules coincide, then
# the sets no rule reads any more.
PASSES = (
    hash_cons_sets,
    merge_port_intervals,
    aggregate_cidrs,
    dedupe_rules,
    subsume_rules,
    concat_lookups,
    share_chains,
    drop_unused_sets,
)


def optimise(graph: RuleGraph, enabled: bool = True) -> RuleGraph:
    if not enabled:
        return graph
    for p in PASSES:
        graph = p(graph)
    return graph
