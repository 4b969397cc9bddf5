"""Optimiser passes over the rule graph: each a pure ``name(graph) -> graph``.

Every pass keeps the set of accepted packets unchanged; tests compare the
optimised and unoptimised rulesets on the kernel and against the evaluator.
"""

from __future__ import annotations

from policyc.ir import RuleGraph
from policyc.passes.dedupe_rules import dedupe_rules
from policyc.passes.drop_unused_sets import drop_unused_sets
from policyc.passes.share_chains import share_chains
from policyc.passes.subsume_rules import subsume_rules

PASSES = (subsume_rules, dedupe_rules, share_chains, drop_unused_sets)


def optimise(graph: RuleGraph, enabled: bool = True) -> RuleGraph:
    if not enabled:
        return graph
    for p in PASSES:
        graph = p(graph)
    return graph
