"""``policyc convert`` and ``policyc fmt``: the policy language's commands.

Part of the composition root (like :mod:`policyc.cli`): the only other
module of ``policyc`` that imports ``grammar``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any

from policyc.errors import InputError, Location, printable

EXIT_CHANGED = 1  # fmt --check: a file is not formatted (as ruff/black --check)


def add_convert(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="convert NetworkPolicies between YAML and the policy language (.pol)",
        description="Write the NetworkPolicies of PATHs as YAML or .pol, in canonical "
        "form, on standard output. Nothing is lost: reading the output back gives the "
        "same policies; what .pol cannot hold (other kinds, labels) is refused.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["-"],
        metavar="PATH",
        help=".yaml/.yml/.json/.pol files, directories (recursive) or - for stdin",
    )
    p.add_argument("--to", required=True, choices=("yaml", "pol"), help="output format")
    p.add_argument(
        "--format",
        choices=("yaml", "json", "pol"),
        help="format of standard input (-): YAML/JSON unless given",
    )


def add_fmt(sub: Any) -> None:
    p = sub.add_parser(
        "fmt",
        help="rewrite .pol files in canonical layout",
        description="Rewrite .pol files in place in canonical layout (- reads stdin and "
        "writes stdout). Exit 1 with --check when a file would change, 2 on bad input.",
    )
    p.add_argument(
        "paths", nargs="*", default=["-"], metavar="PATH", help=".pol files, directories or -"
    )
    p.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file would change"
    )


def _warn(line: str) -> None:
    print(f"policyc: warning: {line}", file=sys.stderr)


def cmd_convert(args: argparse.Namespace) -> int:
    from grammar.convert import convert
    from policyc.cli import READERS, _emit, _write_stdout
    from policyc.load import load_paths

    raws = load_paths(args.paths, READERS, args.format)
    text = convert(raws, args.to, _warn)
    _emit("standard output", lambda: _write_stdout(text))
    return 0


def _pol_files(paths: list[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        if path != "-" and not os.path.exists(path):
            raise InputError("no such file or directory", loc=Location(path, 0, 0))
        if not os.path.isdir(path):
            files.append(path)
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".pol"))
    return files


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", loc=Location(path, 1, 1)) from None


def cmd_fmt(args: argparse.Namespace) -> int:
    """Every file is checked before any is written: bad input changes nothing."""
    from grammar.fmt import format_pol
    from policyc.cli import _emit, _write_stdout

    done: list[tuple[str, str, str]] = []
    for path in _pol_files(args.paths):
        text = _read(path)
        done.append((path, text, format_pol(text, "<stdin>" if path == "-" else path)))
    changed = 0
    for path, old, new in done:
        if args.check:
            if old != new:
                changed += 1
                print(f"would reformat {printable(path)}", file=sys.stderr)
        elif path == "-":
            _emit("standard output", functools.partial(_write_stdout, new))
        elif old != new:
            _emit(path, functools.partial(_replace, path, new))
            print(f"reformatted {printable(path)}", file=sys.stderr)
    return EXIT_CHANGED if changed else 0


def _replace(path: str, text: str) -> None:
    """Write beside and rename over: a reader never sees half a file."""
    tmp = f"{path}.policyc-fmt.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
