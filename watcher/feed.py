"""API-shaped dicts -> validated model objects, one at a time.

The same validation as ``policyc compile``: an object the API server would
reject is logged with its location and skipped, and the last good version
of it stays in force.
"""

from __future__ import annotations

import logging
from typing import Any

from policyc.errors import InputError, InputErrors
from policyc.load import RawObject
from policyc.model import Namespace, NetworkPolicy, Node, Pod
from policyc.parse import build_cluster

log = logging.getLogger("policyc.watch")
Model = Namespace | Node | Pod | NetworkPolicy


def key_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name", "")
    if obj.get("kind") in ("Namespace", "Node"):
        return str(name)
    return f"{ns or 'default'}/{name}"


def parse_one(obj: dict[str, Any], origin: str = "<api>") -> Model | None:
    """The model object for ``obj``; None if it is invalid or not used (e.g. a
    finished pod)."""
    raw = obj if isinstance(obj, RawObject) else RawObject(obj, origin)
    try:
        cluster = build_cluster([raw], warn=lambda m: log.warning("%s", m))
    except (InputError, InputErrors) as exc:
        log.error("invalid object ignored, previous version kept: %s", exc)
        raise
    if cluster.policies:
        return cluster.policies[0]
    if cluster.pods:
        return cluster.pods[0]
    if cluster.namespaces:
        return next(iter(cluster.namespaces.values()))
    if cluster.nodes:
        return next(iter(cluster.nodes.values()))
    return None
