"""policyc command line: compile, apply, explain, matrix, graph."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence

from policyc.errors import InputError, InputErrors, PolicycError
from policyc.model import Cluster
from policyc.pipeline import read_cluster, render

EXIT_INPUT = 2
EXIT_BACKEND = 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="*",
        default=["-"],
        metavar="PATH",
        help="YAML/JSON files, directories (recursive) or - for stdin",
    )
    p.add_argument("--node", help="compile for the pods of this node (spec.nodeName)")
    p.add_argument("--backend", default="nftables", choices=("nftables", "iptables"))
    p.add_argument("--no-opt", action="store_true", help="skip the optimiser passes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policyc", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("compile", help="print the ruleset for the given objects")
    _common(p)
    p.add_argument(
        "-o",
        "--output",
        help="write to this file instead of stdout; with "
        "--backend iptables and a directory: ipset.restore, iptables.rules, "
        "ip6tables.rules",
    )
    p = sub.add_parser("apply", help="compile and program this network namespace atomically")
    _common(p)
    p = sub.add_parser("explain", help="which policy allows or denies a connection")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("port", help="PORT[/PROTO], e.g. 80/tcp")
    p.add_argument("paths", nargs="*", default=["-"], metavar="PATH")
    p = sub.add_parser("matrix", help="print the pod reachability matrix")
    p.add_argument("paths", nargs="*", default=["-"], metavar="PATH")
    p.add_argument("--port", default="80/tcp")
    p = sub.add_parser("graph", help="draw the rule graph (Graphviz dot)")
    _common(p)
    p = sub.add_parser("watch", help="run the node agent (list/watch, incremental, atomic)")
    from watcher.main import add_arguments

    add_arguments(p)
    return parser


def _port(text: str) -> tuple[int, str]:
    port, _, proto = text.partition("/")
    return int(port), (proto or "tcp").upper()


def cmd_compile(args: argparse.Namespace) -> int:
    cluster = read_cluster(args.paths)
    text = render(cluster, args.backend, args.node, not args.no_opt)
    if (
        args.output
        and args.backend == "iptables"
        and (os.path.isdir(args.output) or args.output.endswith("/"))
    ):
        from backends.iptables import write_dir

        write_dir(text, args.output)
    elif args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from backends import get
    from policyc.sysctl import ensure_bridge_netfilter

    cluster = read_cluster(args.paths)
    if args.backend == "nftables":
        from policyc.pipeline import ruleset_of

        nft = get("nftables")
        state = nft.render(ruleset_of(cluster, args.node, not args.no_opt))
        text = nft.write(state)
    else:
        text = render(cluster, args.backend, args.node, not args.no_opt)
    for note in ensure_bridge_netfilter():
        print(f"policyc: {note}", file=sys.stderr)
    if args.backend == "nftables":
        nft.apply(nft.diff(None, state))  # both tables replaced, one transaction
    else:
        get(args.backend).apply(text)
    print(
        f"policyc: applied {args.backend} ruleset ({len(text.splitlines())} lines)", file=sys.stderr
    )
    return 0


def _resolve(cluster: Cluster, text: str) -> str:
    """A pod given as ns/name stands for its first IP."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    for pod in cluster.pods:
        if pod.key == text and pod.ips:
            return str(pod.ips[0])
    raise InputError(f"no pod {text!r} with an IP in the input")


def cmd_explain(args: argparse.Namespace) -> int:
    from policyc.evaluate import Evaluator

    cluster = read_cluster(args.paths)
    port, proto = _port(args.port)
    src, dst = _resolve(cluster, args.src), _resolve(cluster, args.dst)
    v = Evaluator(cluster).allowed(src, dst, port, proto)
    print(
        f"{args.src} ({src}) -> {args.dst} ({dst}) {port}/{proto}: "
        f"{'ALLOWED' if v.allowed else 'DENIED'}"
    )
    print(f"  {v.reason}")
    for label in v.egress_by:
        print(f"  egress allowed by {label}")
    for label in v.ingress_by:
        print(f"  ingress allowed by {label}")
    return 0 if v.allowed else 3


def cmd_matrix(args: argparse.Namespace) -> int:
    from policyc.evaluate import Evaluator

    cluster = read_cluster(args.paths)
    port, proto = _port(args.port)
    ev = Evaluator(cluster)
    pods = [p for p in cluster.pods if p.ips and not p.host_network]
    width = max([len(p.key) for p in pods] + [4])
    print(" " * width + " " + " ".join(p.key for p in pods))
    for src in pods:
        cells = []
        for dst in pods:
            ok = ev.allowed(src.ips[0], dst.ips[0], port, proto).allowed
            cells.append(("." if ok else "X").center(len(dst.key)))
        print(src.key.ljust(width) + " " + " ".join(cells))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from policyc.graphviz import to_dot
    from policyc.pipeline import graph_of

    cluster = read_cluster(args.paths)
    sys.stdout.write(to_dot(graph_of(cluster, args.node, not args.no_opt)))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from watcher.main import run

    return run(args)


COMMANDS = {
    "compile": cmd_compile,
    "apply": cmd_apply,
    "explain": cmd_explain,
    "matrix": cmd_matrix,
    "graph": cmd_graph,
    "watch": cmd_watch,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except (InputError, InputErrors) as exc:
        print(
            f"policyc: error: {exc}"
            if isinstance(exc, InputError)
            else "\n".join(f"policyc: error: {e}" for e in exc.errors),
            file=sys.stderr,
        )
        return EXIT_INPUT
    except PolicycError as exc:
        print(f"policyc: error: {exc}", file=sys.stderr)
        return EXIT_BACKEND


if __name__ == "__main__":
    sys.exit(main())
