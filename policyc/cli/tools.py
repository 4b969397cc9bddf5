"""``policyc matrix`` and ``graph``: read-only views of a cluster."""

from __future__ import annotations

import argparse
import sys

from policyc import views_cli
from policyc.cli import inputs
from policyc.model import Cluster


def build_matrix(p: argparse.ArgumentParser) -> None:
    inputs.add_input_arguments(p, namespace=False)
    views_cli.add_matrix_arguments(p)


def run_matrix(args: argparse.Namespace) -> int:
    cluster = inputs.cluster_from_args(args)
    _warn_unknown_node(cluster, args.node)
    return views_cli.run_matrix(args, cluster)


def _warn_unknown_node(cluster: Cluster, node: str | None) -> None:
    """A --node typo drew an empty matrix or a graph with no pod, without a
    word: say which nodes the input has, as compile does."""
    if node is not None and (problem := inputs.node_problem(cluster, node)):
        print(f"policyc: warning: {problem}", file=sys.stderr)


def build_graph(p: argparse.ArgumentParser) -> None:
    inputs.add_input_arguments(p)
    p.add_argument("--node", metavar="NAME", help="draw the rules of this node's pods")
    p.add_argument("--no-opt", action="store_true", help="skip the optimiser passes")
    views_cli.add_graph_arguments(p)


def run_graph(args: argparse.Namespace) -> int:
    cluster = inputs.cluster_from_args(args)
    _warn_unknown_node(cluster, args.node)
    return views_cli.run_graph(args, cluster)
