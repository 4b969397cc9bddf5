"""The ``explain`` and ``diff`` subcommands: argument builders and run functions.

``explain`` reads its cluster as every command does (PATHs, or the live
cluster with --from-cluster/--kubeconfig/--context); ``diff OLD NEW`` reads
two, and with --from-cluster compares the live cluster (OLD) with NEW.

Exit codes: ``explain`` 0 allowed (for every address pair), 3 denied, 2 bad
input, 1 tracer and evaluator disagree; ``diff`` as diff(1): 0 no change in
reachability, 1 connections opened or closed, 2 trouble (bad input).
"""

from __future__ import annotations

import argparse
import sys

from policyc import explain_render, reachdiff_render
from policyc.cli import inputs
from policyc.errors import InputError
from policyc.evaluate import Evaluator
from policyc.explain import Explained, Explainer
from policyc.model import Cluster
from policyc.pipeline import ruleset_of
from policyc.reachdiff import reach_diff

EXIT_DENIED = 3
EXIT_DIFFERENT = 1


def build_explain(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Explain SRC -> DST PORT in both directions (egress of the source, "
        "ingress of the destination) and trace it through each node's compiled ruleset. "
        "Exit 0 allowed, 3 denied, 2 bad input, 1 tracer and evaluator disagree."
    )
    p.add_argument("src", metavar="SRC", help="source pod as ns/name (all its IPs) or an IP")
    p.add_argument("dst", metavar="DST", help="destination pod as ns/name or an IP")
    p.add_argument(
        "port",
        metavar="PORT[/PROTOCOL]",
        help="80/tcp, 53/udp, or a containerPort name of the destination (http)",
    )
    inputs.add_input_arguments(p)
    p.add_argument("--family", type=int, choices=(4, 6), help="only IPv4 or IPv6 (default both)")
    p.add_argument("--no-opt", action="store_true", help="trace the unoptimised ruleset")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def run_explain(args: argparse.Namespace) -> int:
    cluster = inputs.cluster_from_args(args)
    explainer = Explainer(cluster, lambda node: ruleset_of(cluster, node, not args.no_opt))
    result = explainer.explain(args.src, args.dst, args.port, args.family)
    sys.stdout.write(explain_render.render(result, args.output))
    if args.output == "text" and any(p.audit for p in cluster.policies):
        sys.stdout.write(audited_line(cluster, result))
    return 0 if result.allowed else EXIT_DENIED


def audited_line(cluster: Cluster, result: Explained) -> str:
    """The verdict as if every ``policyc.io/mode: audit`` policy were
    enforced (docs/observability.md, "Audit mode")."""
    ev = Evaluator(cluster, audited=True)
    q = result.port
    verdicts = [ev.allowed(c.src.ip, c.dst.ip, q.port, q.protocol) for c in result.cases]
    word = "ALLOWED" if all(v.allowed for v in verdicts) else "DENIED"
    why = next((v.reason for v in verdicts if not v.allowed), "")
    return f"audited (audit-mode policies enforced): {word}" + (f": {why}" if why else "") + "\n"


def build_diff(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Compare the reachability of OLD and NEW (files or directories; with "
        "--from-cluster OLD is the live cluster and only NEW is given) for "
        "every pod present in both, on every port policies or containerPorts name, "
        "grouped by the policy whose change caused it. Exit 0 same, 1 different, 2 trouble."
    )
    p.add_argument("old", metavar="OLD", help="the current objects: a file or directory")
    p.add_argument(
        "new", metavar="NEW", nargs="?", help="the proposed objects: a file or directory"
    )
    inputs.add_format(p)
    inputs.add_namespace(p)
    inputs.add_live(p)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def run_diff(args: argparse.Namespace) -> int:
    if inputs.wants_cluster(args):
        if args.new is not None:
            raise InputError("with --from-cluster give only NEW: OLD is the live cluster")
        old, new = inputs.live_cluster(args), inputs.cluster_from_paths([args.old], args)
    else:
        if args.new is None:
            raise InputError("give OLD and NEW (or --from-cluster and NEW)")
        if args.old == args.new == "-":  # NEW would read what OLD left: nothing
            raise InputError("OLD and NEW cannot both be standard input (-)")
        old = inputs.cluster_from_paths([args.old], args)
        new = inputs.cluster_from_paths([args.new], args)
    delta = reach_diff(old, new)
    sys.stdout.write(reachdiff_render.render(delta, args.output))
    return EXIT_DIFFERENT if delta.changes else 0
