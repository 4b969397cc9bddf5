"""The ``explain`` and ``diff`` subcommands: argument builders and run functions.

``policyc/cli.py`` calls ``add_explain(sub)``/``add_diff(sub)`` and dispatches
to ``run_explain(args, read)``/``run_diff(args, read)``; ``read`` turns the
PATH arguments into a ``Cluster`` (so a cluster reader can be passed in).

Exit codes: ``explain`` 0 allowed (for every address pair), 3 denied, 2 bad
input, 1 tracer and evaluator disagree; ``diff`` as diff(1): 0 no change in
reachability, 1 connections opened or closed, 2 trouble (bad input).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from policyc import explain_render, reachdiff_render
from policyc.explain import Explainer
from policyc.model import Cluster
from policyc.pipeline import ruleset_of
from policyc.reachdiff import reach_diff

Read = Callable[[Sequence[str]], Cluster]
EXIT_DENIED = 3
EXIT_DIFFERENT = 1


def add_explain(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "explain",
        help="which policy allows or denies a connection, traced through the ruleset",
        description="Explain SRC -> DST PORT in both directions (egress of the source, "
        "ingress of the destination) and trace it through each node's compiled ruleset. "
        "Exit 0 allowed, 3 denied, 2 bad input, 1 tracer and evaluator disagree.",
    )
    p.add_argument("src", metavar="SRC", help="source pod as ns/name (all its IPs) or an IP")
    p.add_argument("dst", metavar="DST", help="destination pod as ns/name or an IP")
    p.add_argument(
        "port",
        metavar="PORT[/PROTO]",
        help="80/tcp, 53/udp, or a containerPort name of the destination (http)",
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["-"],
        metavar="PATH",
        help="YAML/JSON/.pol files, directories (recursive) or - for stdin (default)",
    )
    p.add_argument("--family", type=int, choices=(4, 6), help="only IPv4 or IPv6 (default both)")
    p.add_argument("--no-opt", action="store_true", help="trace the unoptimised ruleset")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def run_explain(args: argparse.Namespace, read: Read) -> int:
    cluster = read(args.paths)
    explainer = Explainer(cluster, lambda node: ruleset_of(cluster, node, not args.no_opt))
    result = explainer.explain(args.src, args.dst, args.port, args.family)
    sys.stdout.write(explain_render.render(result, args.output))
    return 0 if result.allowed else EXIT_DENIED


def add_diff(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diff",
        help="which connections a change of policies or labels opens or closes",
        description="Compare the reachability of OLD and NEW (files or directories) for "
        "every pod present in both, on every port policies or containerPorts name, "
        "grouped by the policy whose change caused it. Exit 0 same, 1 different, 2 trouble.",
    )
    p.add_argument("old", metavar="OLD", help="the current objects: a file or directory")
    p.add_argument("new", metavar="NEW", help="the proposed objects: a file or directory")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def run_diff(args: argparse.Namespace, read: Read) -> int:
    delta = reach_diff(read([args.old]), read([args.new]))
    sys.stdout.write(reachdiff_render.render(delta, args.output))
    return EXIT_DIFFERENT if delta.changes else 0
