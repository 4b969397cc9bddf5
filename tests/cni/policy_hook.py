"""An ``on_add`` hook standing in for the watcher: program the pod's rules.

Policy for the test: every pod may send to UDP 7001, never to UDP 7002.
Pods whose name starts with "unknown" are not known to the agent: the hook
leaves them alone, so their port must stay fail-closed.
"""

from __future__ import annotations

from cni import nft
from policyc.names import BRIDGE_CHAIN, BRIDGE_FAMILY, TABLE

CHAIN = f"{BRIDGE_FAMILY} {TABLE} {BRIDGE_CHAIN}"


def on_add(namespace: str, pod: str, iface: str, ips: list[str]) -> None:
    if pod.startswith("unknown"):
        return
    # One atomic transaction; `insert` puts each rule at the top of the chain.
    nft.run(
        f'insert rule {CHAIN} iifname "{iface}" accept\n'
        f'insert rule {CHAIN} iifname "{iface}" udp dport 7002 drop\n'
    )
