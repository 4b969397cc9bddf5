"""``policyc compile`` and ``policyc apply``: the ruleset for one node.

Safety (issue 11): a ruleset for a node the input does not know has no local
pod, so it drops every pod interface of the real node.  ``apply`` therefore
refuses (exit 2) a missing or unknown ``--node`` and an empty input
(``--allow-empty`` installs the bare fail-closed ruleset on purpose);
``compile`` says the same on stderr and still prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from backends import BACKENDS, remove_others
from backends.contract import Backend
from backends.sysctl import ensure_bridge_netfilter, has_net_admin
from policyc.cli import inputs, output
from policyc.cli.log_args import add_log_group
from policyc.errors import InputError, PolicycError
from policyc.lower import lower
from policyc.lower_log import LogConfig
from policyc.model import Cluster
from policyc.pipeline import graph_of


def _backend_arguments(p: argparse.ArgumentParser, node_help: str) -> None:
    p.add_argument("--node", metavar="NAME", help=node_help)
    p.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        help="dataplane: nftables (default) or iptables (+ipset, ebtables)",
    )
    p.add_argument("--no-opt", action="store_true", help="skip the optimiser passes")
    p.add_argument(
        "--log-drops",
        action="store_true",
        help="log each drop at an isolated pod's chain end to NFLOG (docs/observability.md)",
    )
    add_log_group(p)


def build_compile(p: argparse.ArgumentParser) -> None:
    inputs.add_input_arguments(p)
    _backend_arguments(
        p, "compile for the pods of this node (spec.nodeName); without it, for every pod"
    )
    output.add_output_arguments(p)


def build_apply(p: argparse.ArgumentParser) -> None:
    inputs.add_input_arguments(p)
    _backend_arguments(p, "this node's name (spec.nodeName); required")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept an input with no objects: installs the bare fail-closed "
        "ruleset (every pod interface dropped)",
    )


def _log(args: argparse.Namespace) -> LogConfig | None:
    return LogConfig(args.log_group) if args.log_drops else None


def backend_name(args: argparse.Namespace) -> str:
    """--backend, or the one -o implies; InputError when they disagree."""
    fmt = getattr(args, "output", None)
    wanted = output.FORMATS.get(fmt) if fmt else None
    if args.backend and wanted and args.backend != wanted:
        raise InputError(f"-o {fmt} is {wanted} output; it conflicts with --backend {args.backend}")
    return str(args.backend or wanted or "nftables")


def _warn(text: str) -> None:
    print(f"policyc: warning: {text}", file=sys.stderr)


def _warn_shared(cluster: Cluster) -> None:
    from policyc.evaluate import shared_address_warnings

    for line in shared_address_warnings(cluster.pods):
        _warn(line)


def run_compile(args: argparse.Namespace) -> int:
    name = backend_name(args)
    output.check_paths(args)
    cluster = inputs.cluster_from_args(args)
    _warn_shared(cluster)
    if inputs.is_empty(cluster):
        _warn("the input has no objects: this is the bare fail-closed ruleset")
    elif args.node is None:
        _warn("no --node: every pod of the input is treated as local")
    elif problem := inputs.node_problem(cluster, args.node):
        _warn(f"{problem}; apply would refuse it")
    graph = graph_of(cluster, args.node, not args.no_opt)
    fmt = args.output or ("iptables" if name == "iptables" else "nft")
    if fmt in output.GRAPH_FORMATS:
        output.write_outputs(args, lambda: output.graph_document(graph, fmt), dict)
        return 0
    backend = BACKENDS[name]
    state = backend.render(lower(graph, _log(args)))
    text = (lambda: _nft_json(backend, state)) if fmt == "json" else (lambda: backend.write(state))
    output.write_outputs(args, text, lambda: backend.files(state))
    return 0


def _nft_json(backend: Backend[Any], state: Any) -> str:
    """The ruleset as libnftables JSON commands (what ``nft -j -f`` reads)."""
    from backends.nftables import printer
    from backends.nftables.objects import Transaction

    tx = backend.diff(None, state)
    assert isinstance(tx, Transaction)  # -o json implies the nftables backend
    return json.dumps({"nftables": printer.commands(tx)}, indent=1) + "\n"


def run_apply(args: argparse.Namespace) -> int:
    name = backend_name(args)
    cluster = inputs.cluster_from_args(args)
    _warn_shared(cluster)
    if args.node is None:
        raise InputError(inputs.node_problem(cluster, None) or "")
    if inputs.is_empty(cluster):
        if not args.allow_empty:
            raise InputError(
                "the input has no objects: applying it would drop every pod of the node; "
                "pass --allow-empty to install the bare fail-closed ruleset on purpose"
            )
    elif problem := inputs.node_problem(cluster, args.node):
        raise InputError(f"{problem}; refusing to apply (check --node)")
    if not has_net_admin():
        raise PolicycError("apply needs root (CAP_NET_ADMIN) to program the kernel")
    backend = BACKENDS[name]
    state = backend.render(lower(graph_of(cluster, args.node, not args.no_opt), _log(args)))
    for note in ensure_bridge_netfilter():
        print(f"policyc: {note}", file=sys.stderr)
    # What the kernel holds is read first: the transaction changes only what
    # differs, and leaves every table and chain that is not policyc's alone.
    backend.apply(backend.diff(backend.read_kernel(), state))
    _remove_others(name)
    size = ", ".join(f"{n} {what}" for what, n in state.size().items())
    print(f"policyc: applied {name} ruleset ({size})", file=sys.stderr)
    return 0


def _remove_others(name: str) -> None:
    """Switching backend: the other backends' rules go, once the new ones are in."""
    for other in remove_others(name, _warn):
        print(f"policyc: removed the {other} ruleset (switched to {name})", file=sys.stderr)
