"""The one-way pipeline: sources -> model -> IR -> passes -> lowered -> text."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from policyc.chains import Ruleset
from policyc.compiler import compile_cluster
from policyc.ir import RuleGraph
from policyc.load import load_paths
from policyc.lower import lower
from policyc.model import Cluster
from policyc.parse import build_cluster
from policyc.passes import optimise


def read_cluster(paths: Iterable[str], warn: Callable[[str], None] | None = None) -> Cluster:
    return build_cluster(load_paths(paths), warn)


def graph_of(cluster: Cluster, node: str | None = None, opt: bool = True) -> RuleGraph:
    return optimise(compile_cluster(cluster, node), enabled=opt)


def ruleset_of(cluster: Cluster, node: str | None = None, opt: bool = True) -> Ruleset:
    return lower(graph_of(cluster, node, opt))


def render(cluster: Cluster, backend: str, node: str | None = None, opt: bool = True) -> str:
    from backends import get

    b = get(backend)
    if backend == "nftables":
        return str(b.write(b.render(ruleset_of(cluster, node, opt))))
    return str(b.render(ruleset_of(cluster, node, opt)))
