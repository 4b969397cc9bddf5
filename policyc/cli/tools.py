"""``policyc matrix`` and ``graph``: read-only views of a cluster."""

from __future__ import annotations

import argparse

from policyc import views_cli
from policyc.cli import inputs


def build_matrix(p: argparse.ArgumentParser) -> None:
    inputs.add_input_arguments(p, namespace=False)
    views_cli.add_matrix_arguments(p)


def run_matrix(args: argparse.Namespace) -> int:
    return views_cli.run_matrix(args, inputs.cluster_from_args(args))


def build_graph(p: argparse.ArgumentParser) -> None:
    inputs.add_input_arguments(p)
    p.add_argument("--node", metavar="NAME", help="draw the rules of this node's pods")
    p.add_argument("--no-opt", action="store_true", help="skip the optimiser passes")
    views_cli.add_graph_arguments(p)


def run_graph(args: argparse.Namespace) -> int:
    return views_cli.run_graph(args, inputs.cluster_from_args(args))
