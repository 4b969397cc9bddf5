"""Sets no rule reads are dead weight in the kernel; the fixed sets (node,
isolation, dispatch maps, anti-spoofing) are always read by the dispatch
chains.  A policy's selected-pods set is read only by the shared-address
chains (``graph.shared``): elsewhere the dispatch map stands for the pod's
own side.  ClusterNetworkPolicy rules (``graph.tiers``) read sets too."""

from __future__ import annotations

import dataclasses

from policyc.ir import RuleGraph
from policyc.passes.setpool import FIXED_PREFIXES


def drop_unused_sets(graph: RuleGraph) -> RuleGraph:
    used: set[str] = set()
    for node in graph.policies + graph.tiers:
        if node.rules and graph.shared and node.selected:
            used.add(node.selected)
        for rule in node.rules:
            used.update(rule.peer_sets or ())
            used.update(rule.port_sets or ())
    sets = tuple(s for s in graph.sets if s.name in used or s.name.startswith(FIXED_PREFIXES))
    return dataclasses.replace(graph, sets=sets)
