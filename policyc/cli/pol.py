"""``policyc convert``, ``fmt`` and ``demo``: the policy language and the playground."""

from __future__ import annotations

import argparse
import functools
import os
import sys

from policyc.cli.inputs import READERS, add_format, add_namespace, default_namespace
from policyc.cli.output import emit, write_file, write_stdout
from policyc.errors import printable
from policyc.load import load_paths


def build_convert(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write the objects of PATHs as YAML or .pol, NetworkPolicies in canonical "
        "form, on standard output. Nothing is lost: reading the output back gives the same "
        "policies; what .pol cannot hold (other kinds, labels) is refused (exit 2)."
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["-"],
        metavar="PATH",
        help=".yaml/.yml/.json/.pol files, directories (recursive) or - for stdin",
    )
    p.add_argument("--to", required=True, choices=("yaml", "pol"), help="output format")
    add_format(p)
    add_namespace(p)


def run_convert(args: argparse.Namespace) -> int:
    from grammar.convert import convert

    raws = load_paths(args.paths, READERS, args.format)
    # A .pol policy always names its namespace, and the YAML writer writes one:
    # say where a namespace-less manifest went (Argo CD's expect kubectl -n).
    default_namespace(raws, args.namespace)
    text = convert(raws, args.to, lambda line: print(f"policyc: warning: {line}", file=sys.stderr))
    emit("standard output", lambda: write_stdout(text))
    return 0


def build_fmt(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Rewrite .pol files in place in canonical layout (- reads stdin and writes "
        "stdout). Exit 1 with --check when a file would change, 2 on bad input."
    )
    p.add_argument(
        "paths", nargs="*", default=["-"], metavar="PATH", help=".pol files, directories or -"
    )
    p.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file would change"
    )


def run_fmt(args: argparse.Namespace) -> int:
    """Exit 1 with --check when a file would change (as ruff/black --check)."""
    from grammar.fmt import format_paths

    changed = 0
    for path, old, new in format_paths(args.paths):
        if args.check:
            changed += old != new
            if old != new:
                print(f"would reformat {printable(path)}", file=sys.stderr)
        elif path == "-":
            emit("standard output", functools.partial(write_stdout, new))
        elif old != new:
            emit(path, functools.partial(_replace_file, path, new))
            print(f"reformatted {printable(path)}", file=sys.stderr)
    return 1 if changed else 0


def _replace_file(path: str, text: str) -> None:
    """Write beside and rename over: a reader never sees half a file."""
    tmp = f"{path}.policyc-fmt.tmp"
    try:
        write_file(tmp, text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_demo(p: argparse.ArgumentParser) -> None:
    from backends import BACKENDS

    p.description = (
        "Build pcdemo-* network namespaces (a node and four pods wired by "
        "policyc-cni), run the agent on DIR/manifests and print the matrix of real TCP probes "
        "again whenever the manifests change, until Ctrl-C. `demo down` removes it all."
    )
    p.add_argument("action", nargs="?", choices=("up", "down"), default="up", help="up or down")
    p.add_argument("--dir", default="/run/policyc-demo", help="state and manifests directory")
    p.add_argument("--once", action="store_true", help="print one matrix, stop the agent, exit")
    p.add_argument("--port", type=int, default=80, help="TCP port the pods serve and are probed on")
    p.add_argument(
        "--backend",
        default="nftables",
        choices=sorted(BACKENDS),
        help="the backend the demo agent programs (default nftables)",
    )


def run_demo(args: argparse.Namespace) -> int:
    from policyc import demo

    return demo.run(args, READERS)
