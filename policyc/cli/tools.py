"""``policyc explain``, ``matrix`` and ``graph``: read-only views of a cluster."""

from __future__ import annotations

import argparse
import ipaddress

from policyc import views_cli
from policyc.cli import inputs
from policyc.errors import InputError, clipped, printable
from policyc.model import Cluster, Protocol


def parse_port(text: str) -> tuple[int, str]:
    """``PORT[/PROTO]`` as (1..65535, "TCP"|"UDP"|"SCTP"); InputError (exit 2)
    for anything else, which int() and Protocol() used to raise with a
    traceback (80/icmp, a name, 5,000 digits) or let through (99999999)."""
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").upper()
    if proto == "ICMP" or proto == "ICMPV6":
        raise InputError(
            f"port {clipped(printable(text))!r}: NetworkPolicy does not match ICMP "
            "(its protocols are TCP, UDP and SCTP)"
        )
    ok = port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535
    if not ok or proto not in {p.value for p in Protocol}:
        raise InputError(
            f"port {clipped(printable(text))!r}: want PORT[/PROTO] with PORT 1-65535 "
            "and PROTO tcp, udp or sctp"
        )
    return int(port), proto


def _resolve(cluster: Cluster, text: str) -> str:
    """A pod given as ns/name stands for its first IP."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    for pod in cluster.pods:
        if pod.key == text and pod.ips:
            return str(pod.ips[0])
    raise InputError(f"no pod {printable(text)!r} with an IP in the input")


def build_explain(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help="source pod as NAMESPACE/NAME, or an IP address")
    p.add_argument("dst", metavar="DST", help="destination pod as NAMESPACE/NAME, or an IP")
    p.add_argument("port", metavar="PORT[/PROTO]", help="destination port, e.g. 80/tcp, 53/udp")
    inputs.add_input_arguments(p)


def run_explain(args: argparse.Namespace) -> int:
    from policyc.evaluate import Evaluator

    port, proto = parse_port(args.port)
    cluster = inputs.cluster_from_args(args)
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
