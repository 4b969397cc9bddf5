"""Draw the rule graph with Graphviz: DOT text, and SVG through the ``dot``
program (Debian package ``graphviz``) when it is installed.

We shell out to ``dot`` rather than use a Python binding: the ``graphviz``
PyPI package is itself a wrapper around the same program, and pygraphviz
needs the C headers at install time.
"""

from __future__ import annotations

import shutil
import subprocess

from policyc.errors import PolicycError
from policyc.graph_render import drawing
from policyc.graph_render import to_dot as drawing_dot
from policyc.ir import RuleGraph
from policyc.model import Cluster


def to_dot(graph: RuleGraph, cluster: Cluster | None = None) -> str:
    """``graph`` as DOT: pods -> policies -> rules -> labelled sets;
    ``cluster``, the model ``graph`` was compiled from, completes the
    pod -> policy edges (``graph_render.selected_pods``)."""
    return drawing_dot(drawing(graph, cluster))


def to_svg(dot_text: str) -> str:
    """``dot -Tsvg`` of ``dot_text``; PolicycError (exit 1) if Graphviz is
    not installed or fails."""
    exe = shutil.which("dot")
    if exe is None:
        raise PolicycError("SVG and HTML output need Graphviz's dot (apt-get install graphviz)")
    done = subprocess.run(
        [exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise PolicycError(f"dot -Tsvg failed: {done.stderr.strip()[:500]}")
    return done.stdout
