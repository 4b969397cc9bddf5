"""NetworkPolicies between YAML and the policy language, both ways.

Both writers start from the validated model (:class:`policyc.model.NetworkPolicy`),
so the output is the canonical form of what policyc compiles: the API's
defaults made explicit (``policyTypes``, ``protocol: TCP``), selector values
sorted and deduplicated, CIDRs as networks.  Reading either output back gives
the same model (``tests/test_convert.py`` checks it on random policies), and
converting that to the same format again gives the same text.

Spec lines (NetworkPolicySpec): "If this field [policyTypes] is not
specified, it will default based on the existence of ingress or egress
rules"; rules of a direction not listed in ``policyTypes`` are not enforced,
so the writers leave them out and :func:`convert` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import yaml

from grammar.selector import to_api
from policyc.errors import InputError
from policyc.load import RawObject
from policyc.model import Direction, NetworkPolicy, Op, Peer, PolicyRule, PortSpec, Selector
from policyc.parse import read_all, read_one

Warn = Callable[[str], None]
TO_FORMATS = ("yaml", "pol")
_KEEP_META = ("labels", "annotations")  # what the YAML writer carries over


def selector_text(sel: Selector) -> str:
    """A selector in ``kubectl -l`` syntax: ``app=web, env in (a,b), !legacy``.

    Raises ValueError for an In/NotIn list holding the empty value beside
    others, which that syntax cannot write."""
    parts = []
    for r in sel.requirements:
        if r.op in (Op.IN, Op.NOT_IN) and len(r.values) > 1 and "" in r.values:
            raise ValueError(f"label {r.key!r}: an empty value in a list cannot be written")
        if r.op is Op.IN:
            parts.append(f"{r.key}={r.values[0]}" if len(r.values) == 1 else _list(r, "in"))
        elif r.op is Op.NOT_IN:
            parts.append(f"{r.key}!={r.values[0]}" if len(r.values) == 1 else _list(r, "notin"))
        elif r.op is Op.EXISTS:
            parts.append(r.key)
        else:
            parts.append(f"!{r.key}")
    return ", ".join(parts)


def _list(r: Any, word: str) -> str:
    return f"{r.key} {word} ({','.join(r.values)})"


def _peer_text(peer: Peer) -> str:
    if peer.ip_block is not None:
        text = f"cidr {peer.ip_block.cidr}"
        if peer.ip_block.excepts:
            text += " except " + ", ".join(str(e) for e in peer.ip_block.excepts)
        return text
    parts = []
    if peer.namespace_selector is not None:
        parts.append(f"ns({selector_text(peer.namespace_selector)})")
    if peer.pod_selector is not None:
        parts.append(f"pods({selector_text(peer.pod_selector)})")
    return " ".join(parts)


def _port_text(port: PortSpec) -> str:
    proto = port.protocol.value.lower()
    if port.port is None:
        return proto
    if port.end_port is not None:
        return f"{proto}/{port.port}-{port.end_port}"
    return f"{proto}/{port.port}"


def _rule_text(rule: PolicyRule, word: str) -> str:
    text = "allow"
    if rule.peers:
        text += f" {word} " + ", ".join(_peer_text(p) for p in rule.peers)
    if rule.ports:
        text += " ports " + ", ".join(_port_text(p) for p in rule.ports)
    return text


Line = tuple[str, tuple[str | int, ...] | None]  # text, the object path it writes


def policy_lines(policy: NetworkPolicy) -> list[Line]:
    """The lines of :func:`policy_text`, each with the path of what it writes
    (``()`` the head, ``("spec", "podSelector")``, ``("spec", "ingress", i)``
    a rule) or None (braces, section heads): fmt anchors comments on them."""
    lines: list[Line] = [(f"policy {policy.name} in {policy.namespace} {{", ())]
    if policy.pod_selector.requirements:
        lines.append((f"  select {selector_text(policy.pod_selector)}", ("spec", "podSelector")))
    for direction, word in ((Direction.INGRESS, "from"), (Direction.EGRESS, "to")):
        if direction not in policy.policy_types:
            continue
        name = direction.value.lower()
        rules = policy.rules(direction)
        if not rules:
            lines.append((f"  {name} {{}}", None))
            continue
        lines.append((f"  {name} {{", None))
        lines.extend((f"    {_rule_text(r, word)}", ("spec", name, i)) for i, r in enumerate(rules))
        lines.append(("  }", None))
    lines.append(("}", None))
    return lines


def policy_text(policy: NetworkPolicy) -> str:
    """One ``policy NAME in NS { ... }`` block in canonical layout (two-space
    indent, one ``allow`` a line, ``ingress`` before ``egress``), newline-ended."""
    return "".join(text + "\n" for text, _ in policy_lines(policy))


def _selector_object(sel: Selector) -> dict[str, object]:
    return to_api(sel)


def _rule_object(rule: PolicyRule, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.peers:
        out[key] = [_peer_object(p) for p in rule.peers]
    if rule.ports:
        out["ports"] = [_port_object(p) for p in rule.ports]
    return out


def _peer_object(peer: Peer) -> dict[str, Any]:
    if peer.ip_block is not None:
        block: dict[str, Any] = {"cidr": str(peer.ip_block.cidr)}
        if peer.ip_block.excepts:
            block["except"] = [str(e) for e in peer.ip_block.excepts]
        return {"ipBlock": block}
    out: dict[str, Any] = {}
    if peer.namespace_selector is not None:
        out["namespaceSelector"] = _selector_object(peer.namespace_selector)
    if peer.pod_selector is not None:
        out["podSelector"] = _selector_object(peer.pod_selector)
    return out


def _port_object(port: PortSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"protocol": port.protocol.value}
    if port.port is not None:
        out["port"] = port.port
    if port.end_port is not None:
        out["endPort"] = port.end_port
    return out


def policy_object(policy: NetworkPolicy, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The policy as a ``networking.k8s.io/v1`` NetworkPolicy object (plain
    data); ``metadata`` adds labels and annotations kept from the input."""
    types = [d for d in (Direction.INGRESS, Direction.EGRESS) if d in policy.policy_types]
    spec: dict[str, Any] = {
        "podSelector": _selector_object(policy.pod_selector),
        "policyTypes": [d.value for d in types],
    }
    for direction, key in ((Direction.INGRESS, "from"), (Direction.EGRESS, "to")):
        rules = policy.rules(direction)
        if direction in types and rules:
            spec[direction.value.lower()] = [_rule_object(r, key) for r in rules]
    meta: dict[str, Any] = {"name": policy.name, "namespace": policy.namespace}
    meta.update({k: v for k, v in (metadata or {}).items() if k in _KEEP_META and v})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": spec,
    }


def to_yaml(objects: Iterable[dict[str, Any]]) -> str:
    """YAML documents separated by ``---``, keys in API order."""
    return yaml.dump_all(
        list(objects), Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False
    )


def _dropped(raw: RawObject, policy: NetworkPolicy, warn: Warn) -> None:
    for direction in (Direction.INGRESS, Direction.EGRESS):
        if policy.rules(direction) and direction not in policy.policy_types:
            name = direction.value.lower()
            warn(
                f"{raw.loc(('spec', name))}: {raw.ident}: spec.{name}: left out, "
                f"policyTypes does not list {direction.value} (the rules are not enforced)"
            )


def _pol_refusal(raw: RawObject) -> InputError | None:
    if raw.kind != "NetworkPolicy":
        return InputError(
            "the policy language holds only NetworkPolicy objects", loc=raw.loc(()), obj=raw.ident
        )
    meta = raw.data.get("metadata") or {}
    for key in _KEEP_META:
        if isinstance(meta, dict) and meta.get(key):
            return InputError(
                f"the policy language cannot hold {key}; convert --to yaml keeps them",
                loc=raw.loc(("metadata", key)),
                obj=raw.ident,
                field=f"metadata.{key}",
            )
    return None


def convert(raws: list[RawObject], to: str, warn: Warn) -> str:
    """The objects of ``raws`` as YAML or ``.pol`` text, in input order.

    Every object is validated first (InputErrors with all errors, as compile
    reports them).  ``--to yaml`` writes NetworkPolicies in canonical form and
    any other object as it was read; ``--to pol`` refuses (InputError) what the
    language cannot hold rather than drop it: another kind, labels or
    annotations, an In list with the empty value beside others.
    """
    read_all(raws, warn)
    out: list[str] = []
    docs: list[dict[str, Any]] = []
    for raw in raws:
        if to == "pol":
            refusal = _pol_refusal(raw)
            if refusal is not None:
                raise refusal
        policy = read_one(raw, warn) if raw.kind == "NetworkPolicy" else None
        if not isinstance(policy, NetworkPolicy):
            docs.append(raw.data)
            continue
        _dropped(raw, policy, warn)
        if to == "yaml":
            docs.append(policy_object(policy, raw.data.get("metadata")))
            continue
        try:
            out.append(policy_text(policy))
        except ValueError as exc:
            raise InputError(str(exc), loc=raw.loc(()), obj=raw.ident) from None
    return to_yaml(docs) if to == "yaml" else "\n".join(out)
