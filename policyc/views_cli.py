"""The arguments and run functions of ``policyc matrix`` and ``policyc graph``.

``cli.py`` builds each subparser and reads the cluster; these add the
command's own options and render.  Output goes to standard output in the
format ``-o`` names (kubectl's habit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from enum import StrEnum

from policyc.graphviz import to_dot, to_svg
from policyc.html_page import graph_html, matrix_html
from policyc.matrix import build_matrix, matrix_json, parse_port
from policyc.matrix_text import matrix_text
from policyc.model import Cluster
from policyc.pipeline import graph_of


class MatrixFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"


class GraphFormat(StrEnum):
    DOT = "dot"
    SVG = "svg"
    HTML = "html"


class Colour(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def add_matrix_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port",
        default="80/tcp",
        help="PORT[/PROTOCOL] or a container port NAME[/PROTOCOL], resolved per destination pod "
        "(default 80/tcp)",
    )
    p.add_argument(
        "-n",
        "--namespace",
        dest="only_namespaces",
        action="append",
        default=[],
        metavar="NS",
        help="only the pods of this namespace, as kubectl get -n (repeat for more); "
        "every policy still counts",
    )
    p.add_argument("--node", help="only the pods on this node (spec.nodeName)")
    p.add_argument(
        "--audited",
        action="store_true",
        help="the verdicts as if every policyc.io/mode: audit policy were enforced",
    )
    p.add_argument(
        "-o",
        "--output",
        default="text",
        choices=[f.value for f in MatrixFormat],
        help="text (default), json, or html (a self-contained page)",
    )
    p.add_argument(
        "--color",
        default="auto",
        choices=[c.value for c in Colour],
        help="colour the text output (auto: on a terminal, unless NO_COLOR is set)",
    )
    p.add_argument(
        "--width",
        type=_width,
        help="wrap the text output at this many columns (default: the terminal's, "
        "or $COLUMNS, or 100; 0: never wrap)",
    )


def _width(text: str) -> int:
    """argparse type of ``--width``: 0 (never wrap) or more; -5 meant never wrap."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: want 0 (never wrap) or a width")
    return value


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        default="dot",
        choices=[f.value for f in GraphFormat],
        help="dot (Graphviz text), svg or html (both need Graphviz's dot)",
    )


def use_colour(choice: str, stream: object) -> bool:
    """``--color``: auto is a terminal without NO_COLOR ("should check for a
    NO_COLOR environment variable that, when present and not an empty
    string ... prevents the addition of ANSI color", no-color.org)."""
    if choice != Colour.AUTO:
        return choice == Colour.ALWAYS
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def text_width(asked: int | None, stream: object) -> int:
    if asked is not None:
        return asked if asked > 0 else 1 << 30
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return shutil.get_terminal_size().columns
    return 100


def run_matrix(args: argparse.Namespace, cluster: Cluster) -> int:
    query = parse_port(args.port)
    m = build_matrix(cluster, query, args.only_namespaces, args.node, args.audited)
    fmt = MatrixFormat(args.output)
    if fmt is MatrixFormat.JSON:
        text = json.dumps(matrix_json(m), indent=2) + "\n"
    elif fmt is MatrixFormat.HTML:
        text = matrix_html(m)
    else:
        out = sys.stdout
        text = matrix_text(m, text_width(args.width, out), use_colour(args.color, out))
    sys.stdout.write(text)
    return 0


def run_graph(args: argparse.Namespace, cluster: Cluster) -> int:
    dot = to_dot(graph_of(cluster, args.node, not args.no_opt), cluster)
    fmt = GraphFormat(args.output)
    if fmt is GraphFormat.DOT:
        sys.stdout.write(dot)
        return 0
    svg = to_svg(dot)
    if fmt is GraphFormat.SVG:
        sys.stdout.write(svg)
        return 0
    title = "policyc graph" + (f": node {args.node}" if args.node else "")
    sys.stdout.write(graph_html(svg, title))
    return 0
