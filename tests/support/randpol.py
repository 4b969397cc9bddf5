"""Hypothesis strategies for random NetworkPolicies over the e2e world.

The universe is small on purpose (namespaces x, y, z; labels pod=a|b|c and
ns=x|y|z; ports 80, 81 and their names) so that random policies hit the
interesting cases — overlaps, unions, excepts, named ports — often.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Obj = dict[str, Any]
NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
# The kernel tests cannot probe SCTP (no sctp module), so it is opt-in.
PROTOCOLS: tuple[str | None, ...] = ("TCP", "UDP", None)


def _requirement(key: str, values: tuple[str, ...]) -> st.SearchStrategy[Obj]:
    vals = st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)
    return st.one_of(
        st.builds(lambda v: {"key": key, "operator": "In", "values": v}, vals),
        st.builds(lambda v: {"key": key, "operator": "NotIn", "values": v}, vals),
        st.just({"key": key, "operator": "Exists"}),
        st.just({"key": key, "operator": "DoesNotExist"}),
        st.just({"key": "team", "operator": "DoesNotExist"}),
    )


def selector(key: str, values: tuple[str, ...]) -> st.SearchStrategy[Obj]:
    return st.one_of(
        st.just({}),
        st.sampled_from(values).map(lambda v: {"matchLabels": {key: v}}),
        st.lists(_requirement(key, values), min_size=1, max_size=2).map(
            lambda reqs: {"matchExpressions": reqs}
        ),
    )


def _cidr4() -> st.SearchStrategy[Obj]:
    def make(last: int, plen: int, exc: list[tuple[int, int]]) -> Obj:
        base = (last >> (32 - plen) << (32 - plen)) if plen > 24 else 0
        cidr = f"10.244.1.{base}/{plen}" if plen > 24 else "10.244.1.0/24"
        plen = max(plen, 24)
        block: Obj = {"cidr": cidr}
        excepts = []
        for off, elen in exc:
            if elen <= plen:
                continue
            size = 1 << (32 - elen)
            start = base + (off % (1 << (32 - plen))) // size * size
            excepts.append(f"10.244.1.{start}/{elen}")
        if excepts:
            block["except"] = sorted(set(excepts))
        return {"ipBlock": block}

    return st.builds(
        make,
        st.integers(8, 20),
        st.integers(24, 32),
        st.lists(st.tuples(st.integers(0, 255), st.integers(25, 32)), max_size=2),
    )


def _cidr6() -> st.SearchStrategy[Obj]:
    return st.sampled_from(
        [
            {"ipBlock": {"cidr": "2001:db8:244:1::/64"}},
            {"ipBlock": {"cidr": "2001:db8:244:1::/64", "except": ["2001:db8:244:1::10/126"]}},
            {"ipBlock": {"cidr": "2001:db8:244:1::12/127"}},
        ]
    )


def peer() -> st.SearchStrategy[Obj]:
    pod_sel = selector("pod", PODS)
    ns_sel = selector("ns", NAMESPACES)
    return st.one_of(
        pod_sel.map(lambda s: {"podSelector": s}),
        ns_sel.map(lambda s: {"namespaceSelector": s}),
        st.tuples(pod_sel, ns_sel).map(lambda t: {"podSelector": t[0], "namespaceSelector": t[1]}),
        _cidr4(),
        _cidr6(),
    )


def port(protocols: tuple[str | None, ...] = PROTOCOLS) -> st.SearchStrategy[Obj]:
    proto = st.sampled_from(protocols)
    names = ["serve-80-tcp", "serve-81-tcp", "serve-80-udp", "serve-81-udp", "nope"]
    named = st.sampled_from(names + ["serve-80-sctp"] if "SCTP" in protocols else names)

    def make(kind: int, p: str | None, number: int, end: int, name: str) -> Obj:
        out: Obj = {"protocol": p} if p else {}
        if kind == 1:
            out["port"] = number
        elif kind == 2:
            out["port"] = number
            out["endPort"] = max(number, end)
        elif kind == 3:
            out["port"] = name
        return out

    return st.builds(
        make, st.integers(0, 3), proto, st.integers(79, 81), st.integers(79, 82), named
    )


def rule(peers_key: str, protocols: tuple[str | None, ...] = PROTOCOLS) -> st.SearchStrategy[Obj]:

    def make(peers: list[Obj] | None, ports: list[Obj] | None) -> Obj:
        out: Obj = {}
        if peers is not None:
            out[peers_key] = peers
        if ports is not None:
            out["ports"] = ports
        return out

    return st.builds(
        make,
        st.one_of(st.none(), st.lists(peer(), max_size=3)),
        st.one_of(st.none(), st.lists(port(protocols), max_size=2)),
    )


def respell(peers: list[Obj], ns: str) -> list[Obj]:
    """The same peers written otherwise: ``podSelector: {}`` added to or taken
    from a peer with a namespaceSelector, the policy's namespace ``ns`` named
    by its ``kubernetes.io/metadata.name`` label, and the first peer twice."""
    out = []
    for p in peers:
        q = dict(p)
        if "namespaceSelector" in q and q.get("podSelector") == {}:
            del q["podSelector"]
        elif "namespaceSelector" in q and "podSelector" not in q:
            q["podSelector"] = {}
        elif "podSelector" in q and "namespaceSelector" not in q:
            q["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
        out.append(q)
    return out + out[:1]


def _blocks() -> st.SearchStrategy[list[Obj]]:
    return st.lists(st.one_of(_cidr4(), _cidr6()), min_size=1, max_size=2)


@st.composite
def rules(
    draw: st.DrawFn, peers_key: str, protocols: tuple[str | None, ...], reuse: bool, ns: str
) -> list[Obj]:
    """Up to two rules; with ``reuse`` up to three, the second often sharing
    something with the first: its peers (as they are or respelled), its
    ports, or its ports with ipBlocks only on both sides, so that the passes
    that merge rules and sets find something to merge."""
    drawn = draw(st.lists(rule(peers_key, protocols), max_size=3 if reuse else 2))
    if reuse and len(drawn) > 1:
        first, second = dict(drawn[0]), dict(drawn[1])
        how = draw(st.sampled_from(["respelled", "blocks", "ports", "peers", "none"]))
        if how in ("respelled", "peers"):
            first.setdefault(peers_key, draw(st.lists(peer(), min_size=1, max_size=2)))
            peers = first[peers_key] or draw(st.lists(peer(), min_size=1, max_size=2))
            first[peers_key] = peers
            second[peers_key] = respell(peers, ns) if how == "respelled" else list(peers)
        elif how in ("blocks", "ports"):
            if how == "blocks":
                first[peers_key], second[peers_key] = draw(_blocks()), draw(_blocks())
            second.pop("ports", None)
            if "ports" in first:
                second["ports"] = list(first["ports"])
        drawn[0], drawn[1] = first, second
    return drawn


@st.composite
def policy(
    draw: st.DrawFn,
    index: int = 0,
    protocols: tuple[str | None, ...] = PROTOCOLS,
    reuse: bool = False,
) -> Obj:
    ns = draw(st.sampled_from(NAMESPACES))
    spec: Obj = {"podSelector": draw(selector("pod", PODS))}
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types is not None:
        spec["policyTypes"] = types
    if draw(st.booleans()):
        spec["ingress"] = draw(rules("from", protocols, reuse, ns))
    if draw(st.booleans()):
        spec["egress"] = draw(rules("to", protocols, reuse, ns))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"rand-{index}", "namespace": ns},
        "spec": spec,
    }


@st.composite
def policies(
    draw: st.DrawFn,
    min_size: int = 1,
    max_size: int = 3,
    protocols: tuple[str | None, ...] = PROTOCOLS,
    reuse: bool = False,
) -> list[Obj]:
    """``reuse``: rules that share peers or ports (see :func:`rules`)."""
    n = draw(st.integers(min_size, max_size))
    return [draw(policy(i, protocols, reuse)) for i in range(n)]
