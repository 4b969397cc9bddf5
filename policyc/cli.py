"""policyc command line: compile, apply, explain, matrix, graph."""

from __future__ import annotations

import argparse
import errno
import functools
import ipaddress
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from backends import BACKENDS
from backends.contract import Backend
from backends.sysctl import ensure_bridge_netfilter
from policyc.errors import InputError, InputErrors, PolicycError, clipped, printable
from policyc.load import RawObject, Reader
from policyc.lower_log import LogConfig
from policyc.model import Cluster, Protocol
from policyc.observe_cli import add_logs_arguments, add_status_arguments, run_logs, run_status
from policyc.pipeline import read_cluster, ruleset_of
from policyc.views_cli import add_graph_arguments, add_matrix_arguments, run_graph, run_matrix

EXIT_INPUT = 2
EXIT_BACKEND = 1


def _read_pol(text: str, file: str) -> list[RawObject]:
    """The policy language, imported when a ``.pol`` file is met (lark is slow to load)."""
    from grammar.policylang import parse_policies

    return parse_policies(text, file)


# Readers by suffix beyond YAML/JSON: only the CLI ties policyc to grammar.
READERS: dict[str, Reader] = {".pol": _read_pol}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="*",
        default=["-"],
        metavar="PATH",
        help="YAML/JSON files, directories (recursive) or - for stdin",
    )
    p.add_argument("--node", help="compile for the pods of this node (spec.nodeName)")
    p.add_argument("--backend", default="nftables", choices=sorted(BACKENDS))
    p.add_argument("--no-opt", action="store_true", help="skip the optimiser passes")
    p.add_argument(
        "--log-drops", action="store_true", help="log drops to NFLOG (docs/observability.md)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policyc", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("compile", help="print the ruleset for the given objects")
    _common(p)
    p.add_argument(
        "-o",
        "--output",
        help="write to this file instead of stdout; a directory (or a path "
        "ending in /) gets the backend's files: policyc.nft, or ipset.restore, "
        "iptables.rules, ip6tables.rules, ebtables.rules",
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
    add_matrix_arguments(p)
    p = sub.add_parser("graph", help="draw the rule graph (dot, svg or html)")
    _common(p)
    add_graph_arguments(p)
    p = sub.add_parser("logs", help="follow and filter the agent's drop log (--log-drops)")
    add_logs_arguments(p)
    p = sub.add_parser("status", help="is this pod's policy in the kernel yet? (exit 0 yes, 3 no)")
    add_status_arguments(p)
    p = sub.add_parser("watch", help="run the node agent (list/watch, incremental, atomic)")
    from watcher.main import add_arguments

    add_arguments(p)
    return parser


def _port(text: str) -> tuple[int, str]:
    """``PORT[/PROTO]`` as (1..65535, "TCP"|"UDP"|"SCTP"); InputError (exit 2)
    for anything else, which int() and Protocol() used to raise with a
    traceback (80/icmp, a name, 5,000 digits) or let through (99999999)."""
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").upper()
    ok = port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535
    if not ok or proto not in {p.value for p in Protocol}:
        raise InputError(
            f"port {clipped(printable(text))!r}: want PORT[/PROTO] with PORT 1-65535 "
            "and PROTO tcp, udp or sctp"
        )
    return int(port), proto


def _warn_shared(cluster: Cluster) -> None:
    from policyc.evaluate import shared_address_warnings

    for line in shared_address_warnings(cluster.pods):
        print(f"policyc: warning: {line}", file=sys.stderr)


def _state(args: argparse.Namespace) -> tuple[Backend[Any], Any]:
    """The chosen backend and its desired state for the input."""
    cluster = read_cluster(args.paths, readers=READERS)
    _warn_shared(cluster)
    backend = BACKENDS[args.backend]
    log = LogConfig() if args.log_drops else None
    return backend, backend.render(ruleset_of(cluster, args.node, not args.no_opt, log))


def cmd_compile(args: argparse.Namespace) -> int:
    backend, state = _state(args)
    out = args.output
    if not out:
        text = backend.write(state)
        _emit("standard output", lambda: _write_stdout(text))
        return 0
    if os.path.isdir(out) or out.endswith(os.sep):  # every backend has files()
        _emit(out, lambda: os.makedirs(out, exist_ok=True))
        files = {os.path.join(out, n): body for n, body in backend.files(state).items()}
    else:
        files = {out: backend.write(state)}
    for path, body in files.items():
        _emit(path, functools.partial(_write_file, path, body))
    return 0


def _write_file(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _write_stdout(text: str) -> None:
    if sys.stdout is None:  # started with stdout closed (>&-)
        raise OSError(errno.EBADF, "closed")
    sys.stdout.write(text)
    sys.stdout.flush()  # ENOSPC (> /dev/full) here, not in the interpreter's exit


def _emit(what: str, write: Callable[[], object]) -> None:
    """Run ``write``; an OSError (no such directory, disk full, closed
    stdout) becomes one ``policyc: error:`` line and exit 1, not a traceback."""
    try:
        write()
    except BrokenPipeError:
        raise  # the reader went away (`| head`): main() stops quietly
    except OSError as exc:
        raise PolicycError(f"cannot write {printable(what)}: {exc.strerror or exc}") from None


def cmd_apply(args: argparse.Namespace) -> int:
    backend, state = _state(args)
    for note in ensure_bridge_netfilter():
        print(f"policyc: {note}", file=sys.stderr)
    # What the kernel holds is read first: the transaction changes only what
    # differs, and leaves every table and chain that is not policyc's alone.
    backend.apply(backend.diff(backend.read_kernel(), state))
    size = ", ".join(f"{n} {what}" for what, n in state.size().items())
    print(f"policyc: applied {args.backend} ruleset ({size})", file=sys.stderr)
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

    cluster = read_cluster(args.paths, readers=READERS)
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
    if any(p.audit for p in cluster.policies):  # docs/observability.md, "Audit mode"
        a = Evaluator(cluster, audited=True).allowed(src, dst, port, proto)
        print(f"  audited (audit-mode policies enforced): {'ALLOWED' if a else 'DENIED'}")
        if not a.allowed:
            print(f"    {a.reason}")
    return 0 if v.allowed else 3


def cmd_matrix(args: argparse.Namespace) -> int:
    return run_matrix(args, read_cluster(args.paths, readers=READERS))


def cmd_graph(args: argparse.Namespace) -> int:
    return run_graph(args, read_cluster(args.paths, readers=READERS))


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
    "logs": run_logs,
    "status": run_status,
}


def _input_report(exc: InputError | InputErrors) -> str:
    """One ``policyc: error:`` line per error (at most MAX_SHOWN and a count);
    a syntax error's source line and caret follow its line, indented."""
    if isinstance(exc, InputErrors):
        return "\n".join(f"policyc: error: {line}" for line in exc.lines())
    context = "".join(f"\n    {line}" for line in exc.context.splitlines())
    return f"policyc: error: {exc}{context}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except (InputError, InputErrors) as exc:
        print(_input_report(exc), file=sys.stderr)
        return EXIT_INPUT
    except PolicycError as exc:
        print(f"policyc: error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except BrokenPipeError:
        # The reader went away (`policyc matrix | head`): stop quietly, as cat
        # does.  stdout now points at /dev/null so the exit flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BACKEND


if __name__ == "__main__":
    sys.exit(main())
