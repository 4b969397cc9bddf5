"""Where a command's objects come from: files, stdin or the live cluster.

Every command that reads a cluster calls :func:`add_input_arguments` on its
parser and :func:`cluster_from_args` in its run function; nothing else reads
input.  ``-n/--namespace`` follows ``kubectl apply -n``: it is the namespace
of namespaced objects that name none, and an object naming another one is an
error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from policyc.errors import InputError, InputErrors, printable
from policyc.kinds import Kind
from policyc.load import RawObject, Reader, load_paths
from policyc.model import Cluster
from policyc.parse import build_cluster

# Namespace-less objects named one by one on stderr, at most; then a count.
MAX_NOTES = 20


def _read_pol(text: str, file: str) -> list[RawObject]:
    """The policy language, imported when a ``.pol`` file is met (lark is slow to load)."""
    from grammar.policylang import parse_policies

    return parse_policies(text, file)


# Readers by suffix beyond YAML/JSON: only the CLI ties policyc to grammar.
READERS: dict[str, Reader] = {".pol": _read_pol}


def add_input_arguments(
    p: argparse.ArgumentParser, *, paths: bool = True, namespace: bool = True
) -> None:
    """PATH..., -n/--namespace, --from-cluster, --kubeconfig, --context.

    ``paths=False`` for a command that declares its own positionals first
    (``explain SRC DST PORT [PATH...]``) and adds PATH itself afterwards.
    ``namespace=False`` for a view whose ``-n`` filters, as ``kubectl get -n``
    does (``matrix``); namespace-less objects then go to ``default``.
    """
    if paths:
        add_paths(p)
    if namespace:
        add_namespace(p)
    add_live(p)


def add_namespace(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="namespace of namespaced objects that name none (default: default); "
        "an object naming another namespace is an error, as with kubectl apply -n",
    )


def add_live(p: argparse.ArgumentParser) -> None:
    live = p.add_argument_group("live cluster (instead of PATH)")
    live.add_argument(
        "--from-cluster",
        action="store_true",
        help="list Namespaces, Pods, Nodes and NetworkPolicies from the API server",
    )
    live.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (implies --from-cluster; default: $KUBECONFIG, ~/.kube/config)",
    )
    live.add_argument(
        "--context", metavar="NAME", help="kubeconfig context (implies --from-cluster)"
    )


def add_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="YAML/JSON/.pol files, directories (recursive) or - for stdin (default: -)",
    )
    add_format(p)


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("yaml", "json", "pol"),
        help="format of standard input (-): YAML/JSON unless given; files go by suffix",
    )


def wants_cluster(args: argparse.Namespace) -> bool:
    """True when the objects come from the API server rather than PATHs."""
    return bool(
        getattr(args, "from_cluster", False)
        or getattr(args, "kubeconfig", None)
        or getattr(args, "context", None)
    )


def raw_objects(args: argparse.Namespace) -> list[RawObject]:
    """The input's objects, unvalidated, with ``-n`` applied (see module doc)."""
    if wants_cluster(args):
        if args.paths:
            raise InputError("give PATHs or --from-cluster/--kubeconfig/--context, not both")
        if getattr(args, "namespace", None):
            raise InputError(
                f"-n {printable(args.namespace)} with --from-cluster: the API server gives every "
                "object its namespace; -n only places namespace-less objects of PATHs (drop -n)"
            )
        return live_objects(args)
    return path_objects(args.paths or ["-"], args)


def live_objects(args: argparse.Namespace) -> list[RawObject]:
    """The live cluster's objects (--kubeconfig/--context).  ``-n`` is not
    applied: the API server names every namespaced object's namespace, so
    ``-n`` (the namespace of namespace-less objects) could only reject them
    (``diff --from-cluster -n NS NEW`` applies it to NEW)."""
    from policyc.cli.live import list_cluster

    return list_cluster(getattr(args, "kubeconfig", None), getattr(args, "context", None))


def path_objects(paths: list[str], args: argparse.Namespace) -> list[RawObject]:
    """The objects of ``paths`` (``--format`` for stdin if the command has it), ``-n`` applied."""
    raws = load_paths(paths, READERS, getattr(args, "format", None))
    default_namespace(raws, getattr(args, "namespace", None))
    return raws


def cluster_from_args(
    args: argparse.Namespace, warn: Callable[[str], None] | None = None
) -> Cluster:
    """The validated Cluster a command works on: PATHs (files, directories,
    stdin) or, with --from-cluster/--kubeconfig/--context, the live cluster.

    Raises InputError/InputErrors (exit 2) for unreadable or invalid input and
    for a cluster that cannot be reached.  Commands of other modules call this.
    """
    return build_cluster(raw_objects(args), warn)


def cluster_from_paths(
    paths: list[str], args: argparse.Namespace, warn: Callable[[str], None] | None = None
) -> Cluster:
    """The Cluster of ``paths`` with this command's -n (and --format); for a
    command with several inputs (``diff OLD NEW``).  Errors as
    :func:`cluster_from_args`."""
    return build_cluster(path_objects(paths, args), warn)


def live_cluster(args: argparse.Namespace, warn: Callable[[str], None] | None = None) -> Cluster:
    """The live cluster (--kubeconfig/--context, else in-cluster/$KUBECONFIG)."""
    return build_cluster(live_objects(args), warn)


def _namespaced(raw: RawObject) -> bool:
    try:
        return Kind(raw.kind).namespaced
    except ValueError:  # a kind policyc does not read (or ClusterNetworkPolicy)
        return False


def default_namespace(raws: list[RawObject], namespace: str | None) -> None:
    """Give ``namespace`` (or "default") to namespaced objects that name none,
    saying on stderr where; InputErrors for an object naming another namespace
    when ``namespace`` is given.  Changes ``raws`` in place."""
    # kubectl apply -n: "the namespace from the provided object "a" does not
    # match the namespace "b". You must pass '--namespace=a' to perform this operation."
    errors: list[InputError] = []
    notes: list[str] = []
    for raw in raws:
        meta = raw.data.get("metadata")
        if not _namespaced(raw) or not isinstance(meta, dict):
            continue
        have = meta.get("namespace")
        if not have:
            notes.append(f"{raw.loc(())}: {raw.ident}: no metadata.namespace")
            if namespace:  # else the reader puts it in "default", as kubectl does
                meta["namespace"] = namespace
        elif namespace and have != namespace:
            errors.append(
                InputError(
                    f"the object's namespace {printable(str(have))!r} does not match "
                    f"-n {namespace!r}; pass -n {printable(str(have))} or drop -n",
                    loc=raw.loc(("metadata", "namespace")),
                    obj=raw.ident,
                    field="metadata.namespace",
                )
            )
    if errors:
        raise InputErrors(errors)
    _note_defaults(notes, namespace)


def _note_defaults(notes: list[str], namespace: str | None) -> None:
    if not notes:
        return
    where = f"-n {namespace}" if namespace else "default; choose with -n"
    target = namespace or "default"
    for line in notes[:MAX_NOTES]:
        print(f"policyc: note: {line}: namespace {target} ({where})", file=sys.stderr)
    if len(notes) > MAX_NOTES:
        print(
            f"policyc: note: {len(notes) - MAX_NOTES} more objects put in namespace {target}",
            file=sys.stderr,
        )


def node_problem(cluster: Cluster, node: str | None) -> str | None:
    """Why ``node`` is no node of ``cluster`` (None when it is one): it must be
    a Node object or some pod's spec.nodeName, or no pod would be local and the
    ruleset would drop every pod interface of the real node."""
    if node is None:
        return "--node NAME is required: the node whose pods the rules protect"
    if node in cluster.nodes or any(p.node_name == node for p in cluster.pods):
        return None
    known = sorted(set(cluster.nodes) | {p.node_name for p in cluster.pods if p.node_name})
    listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    return (
        f"node {printable(node)!r} is neither a Node object nor any pod's spec.nodeName "
        f"in the input (nodes: {listed or 'none'})"
    )


def is_empty(cluster: Cluster) -> bool:
    return not (
        cluster.namespaces
        or cluster.pods
        or cluster.nodes
        or cluster.policies
        or cluster.cluster_policies
    )
