"""The one-way pipeline: sources -> model -> IR -> passes -> lowered ruleset.

It stops at the lowered ruleset and imports no backend: ``policyc/cli.py``,
the composition root, hands the ruleset to one of ``backends.BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from policyc.chains import Ruleset
from policyc.compiler import compile_cluster
from policyc.ir import RuleGraph
from policyc.load import Reader, open_paths
from policyc.lower import lower
from policyc.lower_log import LogConfig
from policyc.model import Cluster
from policyc.parse import build_cluster
from policyc.passes import optimise


def read_cluster(
    paths: Iterable[str],
    warn: Callable[[str], None] | None = None,
    readers: Mapping[str, Reader] | None = None,
    fmt: str | None = None,
) -> Cluster:
    """The cluster in ``paths``; ``readers``/``fmt`` as for :func:`load_paths`."""
    return build_cluster(open_paths(paths, readers, fmt), warn)


def graph_of(cluster: Cluster, node: str | None = None, opt: bool = True) -> RuleGraph:
    return optimise(compile_cluster(cluster, node), enabled=opt)


def ruleset_of(
    cluster: Cluster, node: str | None = None, opt: bool = True, log: LogConfig | None = None
) -> Ruleset:
    """``log``: log drops (``--log-drops``, docs/observability.md)."""
    return lower(graph_of(cluster, node, opt), log)
