"""Where and how ``compile`` writes: ``-o FORMAT``, ``--output-file``, ``--output-dir``.

kubectl's habit: ``-o/--output`` names a format, never a file.  Formats:

========== =========================================================
nft        the ``nft -f`` script (nftables backend; the default)
json       the same ruleset as libnftables JSON commands (``nft -j -f``)
iptables   ipset + iptables/ip6tables/ebtables-restore text (iptables backend)
graph-yaml the optimised rule graph (backend-neutral) as YAML; ``yaml`` is an alias
graph-json the optimised rule graph as JSON
========== =========================================================

Output paths are checked before anything is compiled, so a typo costs no
time and leaves nothing half-written: exit 2 for a path that cannot be
written; exit 1 only for a failure while writing (disk full, closed stdout).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import errno
import ipaddress
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from policyc.errors import InputError, PolicycError, printable

# format -> the backend it needs (None: the rule graph, any backend)
FORMATS: dict[str, str | None] = {
    "nft": "nftables",
    "json": "nftables",
    "iptables": "iptables",
    "graph-yaml": None,
    "yaml": None,
    "graph-json": None,
}
GRAPH_FORMATS = ("graph-yaml", "yaml", "graph-json")


def output_format(text: str) -> str:
    """argparse type of ``-o``: a known format; a path gets a pointed hint."""
    if text in FORMATS:
        return text
    hint = ""
    if os.sep in text or "." in text:
        hint = "; to write a file use --output-file FILE (a directory: --output-dir DIR)"
    raise argparse.ArgumentTypeError(
        f"unknown format {printable(text)!r} (choose from {', '.join(FORMATS)}){hint}"
    )


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    fmt = p.add_argument(
        "-o",
        "--output",
        type=output_format,
        metavar="FORMAT",
        help=f"output format: {', '.join(FORMATS)} (default: nft, or iptables "
        "with --backend iptables); json is the nft ruleset as libnftables JSON, "
        "graph-yaml/graph-json the rule graph",
    )
    # argcomplete's completer hook: `-o <TAB>` offers the formats, not files
    # (a type= argument has no choices for it to list).
    setattr(fmt, "completer", lambda **_: tuple(FORMATS))  # noqa: B010
    where = p.add_mutually_exclusive_group()
    where.add_argument("--output-file", metavar="FILE", help="write to FILE instead of stdout")
    where.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the backend's files into DIR (created if missing): policyc.nft, "
        "or ipset.restore, iptables.rules, ip6tables.rules, ebtables.rules",
    )


def check_paths(args: argparse.Namespace) -> None:
    """InputError (exit 2) unless --output-file/--output-dir can be written."""
    for flag, value in (("--output-file", args.output_file), ("--output-dir", args.output_dir)):
        if value == "":  # it went to standard output, as if not given
            raise InputError(f"{flag}: empty path")
    if args.output_file:
        path = args.output_file
        if os.path.isdir(path):
            raise InputError(f"--output-file {printable(path)}: is a directory (use --output-dir)")
        _check_parent(f"--output-file {printable(path)}", os.path.dirname(path) or ".")
    if args.output_dir:
        path = args.output_dir.rstrip(os.sep) or os.sep
        if os.path.exists(path) and not os.path.isdir(path):
            raise InputError(f"--output-dir {printable(path)}: exists and is not a directory")
        if os.path.isdir(path):
            _check_parent(f"--output-dir {printable(path)}", path)
        else:
            _check_parent(
                f"--output-dir {printable(path)}", os.path.dirname(path.rstrip("/")) or "."
            )
        if args.output in (*GRAPH_FORMATS, "json"):
            raise InputError(
                f"-o {args.output} is one document: use --output-file, not --output-dir"
            )


def _check_parent(what: str, parent: str) -> None:
    if not os.path.isdir(parent):
        raise InputError(f"{what}: directory {printable(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what}: directory {printable(parent)!r} is not writable")


def plain(value: Any) -> Any:
    """A frozen dataclass tree (the rule graph) as JSON/YAML-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    return value


def graph_document(graph: Any, fmt: str) -> str:
    data = plain(graph)
    if fmt == "graph-json":
        return json.dumps(data, indent=2) + "\n"
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False))


def write_outputs(
    args: argparse.Namespace, text: Callable[[], str], files: Callable[[], dict[str, str]]
) -> None:
    """Write ``text()`` to stdout or --output-file, or ``files()`` into --output-dir."""
    if args.output_dir:
        out = args.output_dir
        emit(out, lambda: os.makedirs(out, exist_ok=True))
        for name, body in files().items():
            path = os.path.join(out, name)
            emit(path, lambda p=path, b=body: write_file(p, b))  # type: ignore[misc]
    elif args.output_file:
        body = text()
        emit(args.output_file, lambda: write_file(args.output_file, body))
    else:
        body = text()
        emit("standard output", lambda: write_stdout(body))


def write_file(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_stdout(text: str) -> None:
    if sys.stdout is None:  # started with stdout closed (>&-)
        raise OSError(errno.EBADF, "closed")
    sys.stdout.write(text)
    sys.stdout.flush()  # ENOSPC (> /dev/full) here, not in the interpreter's exit


def emit(what: str, write: Callable[[], object]) -> None:
    """Run ``write``; an OSError (disk full, closed stdout, a path that changed
    since it was checked) becomes one ``policyc: error:`` line and exit 1."""
    try:
        write()
    except BrokenPipeError:
        raise  # the reader went away (`| head`): main() stops quietly
    except OSError as exc:
        raise PolicycError(f"cannot write {printable(what)}: {exc.strerror or exc}") from None
