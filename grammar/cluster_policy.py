"""The ClusterNetworkPolicy blocks of the compact policy language -> objects in API
shape (``policy.networking.k8s.io/v1alpha2``), validated by the same reader as YAML.

    admin policy no-kube priority 10 {
      subject ns(team=apps)
      egress { deny "api" to cidr 192.0.2.0/24 ports tcp/443 }
    }

``subject``/peers: ``ns(...)`` alone is ``namespaces``; with ``pods(...)`` (or
``pods(...)`` alone, every namespace) it is ``pods``.  ``nodes(...)`` and ``cidr`` are
``nodes`` and ``networks``.  Ports are written as in a NetworkPolicy block:
``tcp/80``, ``udp/80-90``, a port name (``destinationNamedPort``), or ``tcp`` alone
for every port of the protocol (a 1-65535 range).
"""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args

from policyc.errors import Location
from policyc.load import RawObject

ACTIONS = {"accept": "Accept", "deny": "Deny", "pass": "Pass"}
TIERS = {"admin": "Admin", "baseline": "Baseline"}
ALL_PORTS = {"start": 1, "end": 65535}


def _selector_pair(parts: tuple[tuple[str, dict[str, Any]], ...]) -> dict[str, Any]:
    """``ns(...)`` -> {"namespaces": sel}; with ``pods(...)`` -> {"pods": {...}}."""
    found = dict(parts)
    if "podSelector" not in found:
        return {"namespaces": found["namespaceSelector"]}
    return {
        "pods": {
            "namespaceSelector": found.get("namespaceSelector", {}),
            "podSelector": found["podSelector"],
        }
    }


def _protocol(port: dict[str, Any], loc_key: str) -> dict[str, Any]:
    """A NetworkPolicy-shaped port of the ``ports`` rule -> one ``protocols`` entry."""
    loc = port.get(loc_key)
    value = port.get("port")
    if isinstance(value, str):
        return {"destinationNamedPort": value, loc_key: loc}
    proto = str(port.get("protocol", "TCP")).lower()
    if value is None:
        dest: dict[str, Any] = {"range": dict(ALL_PORTS)}
    elif "endPort" in port:
        dest = {"range": {"start": value, "end": port["endPort"]}}
    else:
        dest = {"number": value}
    return {proto: {"destinationPort": dest}, loc_key: loc}


@v_args(inline=True)
class ClusterPolicyRules(Transformer[Token, Any]):
    """Transformer methods of the ``cluster_policy`` rules; mixed into
    ``grammar.policylang.ToObjects``, which provides ``file``, ``LOC`` handling and
    :meth:`finish`."""

    file: str
    loc_key: str

    def finish(self, obj: dict[str, Any], where: Location, ident: str) -> RawObject:
        raise NotImplementedError  # grammar.policylang.ToObjects

    def _at(self, tok: Token) -> Location:
        return Location(self.file, tok.line or 1, tok.column or 1)

    def cluster_policy(
        self, tier: Token, name: Token, prio: Token, subject: dict[str, Any], *sections: Any
    ) -> RawObject:
        spec: dict[str, Any] = {
            "tier": TIERS[str(tier)],
            "priority": int(str(prio)[:6]),
            "subject": subject,
        }
        for direction, rules in sections:
            key = "from" if direction == "ingress" else "to"
            spec.setdefault(direction, []).extend(
                {(key if k == "peers" else k): v for k, v in r.items()} for r in rules
            )
        obj = {
            "apiVersion": "policy.networking.k8s.io/v1alpha2",
            "kind": "ClusterNetworkPolicy",
            "metadata": {"name": str(name)},
            "spec": spec,
        }
        return self.finish(obj, self._at(name), f"ClusterNetworkPolicy {name}")

    def subject(self, *parts: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        return _selector_pair(parts)

    def cnp_section(self, direction: Token, *rules: dict[str, Any]) -> tuple[str, list[Any]]:
        return (str(direction), list(rules))

    def cnp_rule(self, action: Token, *parts: Any) -> dict[str, Any]:
        rule: dict[str, Any] = {"action": ACTIONS[str(action)], self.loc_key: self._at(action)}
        for part in parts:
            if isinstance(part, Token):  # RULE_NAME
                rule["name"] = str(part)[1:-1]
            elif "ports" in part:
                rule["protocols"] = [_protocol(p, self.loc_key) for p in part["ports"]]
            else:
                rule.update(part)
        return rule

    def cnp_peers(self, *peers: dict[str, Any]) -> dict[str, Any]:
        return {"peers": list(peers)}

    def cnp_sel_peer(self, *parts: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        return _selector_pair(parts)

    def nodes_peer(self, arg: Token | None = None) -> dict[str, Any]:
        sel = self._selector(arg)  # type: ignore[attr-defined]
        return {"nodes": sel}

    def networks_peer(self, cidr: Token) -> dict[str, Any]:
        return {"networks": [str(cidr)], self.loc_key: self._at(cidr)}
