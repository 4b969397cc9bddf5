"""Sets with one definition get one name, across policies.

Guarantee: every rule and policy that read set ``B`` read ``A`` instead,
where ``A`` and ``B`` have the same kind, family and definition and ``A``
has the smaller name; ``B`` leaves the graph.  The accepted packets are the
same now and after every later event, because the sets are equal by
definition, not by their current elements:

- pod-driven sets (pods, a policy's selected pods, named ports) are merged
  only when the builder's normal definition (``SetDef.definition``, from
  ``setspecs.SetSpec.canonical``) is equal: one member function, so one
  membership whatever pods come and go.  The builder keeps both; a pod
  event dirties both, and the backends' ``patch`` skips ``B``, which no
  programmed rule reads.  Sets with equal elements today but other
  definitions stay apart: a pod event could tell them apart tomorrow.
- static sets (ipBlocks, numeric ports) are defined by their elements:
  merged when their normal elements are equal (``setpool.normal_elements``).

Kubernetes API, NetworkPolicyPeer: "podSelector ... If namespaceSelector is
also set, then the NetworkPolicyPeer as a whole selects the Pods matching
PodSelector in the Namespaces selected by NamespaceSelector": two peers
lists that select the same pods by that reading are one set.
"""

from __future__ import annotations

import dataclasses

from policyc.ir import RuleGraph, SetDef
from policyc.passes.setpool import FIXED_PREFIXES, STATIC, normal_elements, rename_sets


def _key(s: SetDef) -> tuple[object, ...] | None:
    if s.name.startswith(FIXED_PREFIXES):
        return None
    if s.kind in STATIC:
        return (s.kind, s.family, normal_elements(s))
    if s.definition:
        return (s.kind, s.family, s.definition)
    return None  # no definition known: never merged


def hash_cons_sets(graph: RuleGraph) -> RuleGraph:
    first: dict[tuple[object, ...], str] = {}
    rename: dict[str, str] = {}
    for s in sorted(graph.sets, key=lambda s: s.name):
        key = _key(s)
        if key is None:
            continue
        if key in first:
            rename[s.name] = first[key]
        else:
            first[key] = s.name
    if not rename:
        return graph
    graph = rename_sets(graph, rename)
    return dataclasses.replace(graph, sets=tuple(s for s in graph.sets if s.name not in rename))
