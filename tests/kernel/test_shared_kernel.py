"""A shared address gets least privilege on the kernel, with both backends
(issue 13 §5).

The compiled cluster holds two live claimants of 10.244.1.18 (and
2001:db8:244:1::18): the lab's ``z/c`` (the newcomer) and ``y/old-trusted``
(role=trusted, stale=yes), a pod whose delete the compiler has not seen and
which has no interface in the lab.  ``x/a`` admits port 80 only from
role=trusted pods, and ``y/allow-80`` lets anyone reach stale=yes pods on
port 80.  On the kernel:

* as source: ``z/c -> x/a:80`` is denied (before the fix the peer set held
  the address, the union of both claimants' rights, and it passed), while
  ``y/a``, a real role=trusted pod, is allowed;
* as destination: ``x/b -> 10.244.1.18:80`` is denied: the address is
  isolated because one claimant is, and ``y/allow-80`` does not select the
  other claimant.

Every other cell of the IPv4 matrix matches the reference evaluator, which
follows the same rule.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.figures import count
from tests.support.scenarios import labels, nss, pods, pol, port
from tests.support.world import base_objects, world

from .netlab import Lab
from .world import check_world

BACKENDS = {"nftables": (), "iptables": ("--backend", "iptables")}
POLICIES = [
    pol(
        "x",
        "db-only-trusted",
        labels(pod="a"),
        types=["Ingress"],
        ingress=[{"from": [{**nss(), **pods(role="trusted")}], "ports": [port(80)]}],
    ),
    pol("y", "allow-80", labels(stale="yes"), types=["Ingress"], ingress=[{"ports": [port(80)]}]),
]


def old_trusted() -> dict[str, Any]:
    """A second live claimant of z/c's addresses, absent from the lab."""
    (zc,) = [
        o
        for o in base_objects()
        if o["kind"] == "Pod" and (o["metadata"]["namespace"], o["metadata"]["name"]) == ("z", "c")
    ]
    obj = copy.deepcopy(zc)
    obj["metadata"] = {
        "name": "old-trusted",
        "namespace": "y",
        "labels": {"role": "trusted", "stale": "yes"},
    }
    return obj


def shared_world() -> list[dict[str, Any]]:
    relabel = {("Pod", "y", "a"): {"pod": "a", "role": "trusted"}}
    return [*world(POLICIES, relabel), old_trusted()]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_shared_address_gets_least_privilege(
    clean_lab: Lab, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = clean_lab
    # iptables-nft keeps its rules in nft tables, which clean_lab flushes.
    monkeypatch.setenv("POLICYC_IPTABLES_VARIANT", "nft")
    diff = check_world(lab, shared_world(), 4, extra=BACKENDS[backend])
    count(f"shared_{backend}_matrices")
    assert diff == [], "\n".join(diff)
    za, xa, xb, ya = (lab.pod(k) for k in ("z/c", "x/a", "x/b", "y/a"))
    cases = {
        (za, xa.addr(4), "tcp", 80): False,  # newcomer as source: no inherited grant
        (za, xa.addr(6), "tcp", 80): False,
        (ya, xa.addr(4), "tcp", 80): True,  # a real role=trusted pod
        (ya, xa.addr(6), "tcp", 80): True,
        (xb, za.addr(4), "tcp", 80): False,  # shared address as destination
        (xb, za.addr(6), "tcp", 80): False,
        (xb, xa.addr(4), "tcp", 81): False,  # x/a admits only port 80
    }
    assert lab.probe(cases) == cases
