"""ipMasq: masquerade pod traffic that leaves the pod subnet.

Reference bridge: "ipMasq (boolean, optional): set up IP Masquerade on the
host for traffic originating from this network and destined outside of it".
The reference uses an iptables chain per container; we keep one nftables
rule per pod address, tagged with a comment naming the attachment so DEL and
GC can find it again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from typing import Any

from cni import nft

TABLE = "policyc_cni_nat"
FAMILIES = {4: "ip", 6: "ip6"}
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}


# nft: a comment is a quoted string of at most 128 bytes with no escapes, so a
# quote in it would end the string.  The network name and container ID are
# already restricted to [A-Za-z0-9_.-]; CNI_IFNAME may hold any printable
# character Linux accepts in a name, so a tag that is not plain becomes a digest.
COMMENT_MAX = 128
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+\Z")


def _digest(network: str, cid: str, ifname: str) -> str:
    text = f"{network}:{cid}:{ifname}".encode("utf-8", "surrogateescape")
    return f"{network}:#{hashlib.sha1(text).hexdigest()}"


def tag(network: str, cid: str, ifname: str) -> str:
    """The rule comment naming an attachment: "<network>:<cid>:<ifname>", or
    "<network>:#<sha1>" when that is not plain ASCII or would not fit."""
    plain = f"{network}:{cid}:{ifname}"
    if _PLAIN.match(plain) and len(plain) <= COMMENT_MAX:
        return plain
    return _digest(network, cid, ifname)


def setup(network: str, cid: str, ifname: str, ips: list[dict[str, Any]]) -> None:
    lines = []
    for ip in ips:
        iface = ipaddress.ip_interface(ip["address"])
        fam = FAMILIES[iface.version]
        lines += [
            f"add table {fam} {TABLE}",
            f"add chain {fam} {TABLE} postrouting "
            "{ type nat hook postrouting priority srcnat; policy accept; }",
            f"add rule {fam} {TABLE} postrouting {fam} saddr {iface.ip} "
            f"{fam} daddr != {iface.network} {fam} daddr != {MULTICAST[iface.version]} "
            f'masquerade comment "{tag(network, cid, ifname)}"',
        ]
    if lines:
        nft.run("\n".join(lines) + "\n")


def _rules() -> list[tuple[str, int, str]]:
    out = []
    for fam in FAMILIES.values():
        try:
            items = nft.list_json(f"chain {fam} {TABLE} postrouting")
        except nft.NftError:
            continue
        for item in items:
            rule = item.get("rule")
            if rule and rule.get("comment"):
                out.append((fam, int(rule["handle"]), str(rule["comment"])))
    return out


def _delete(victims: list[tuple[str, int, str]]) -> None:
    cmds = [f"delete rule {fam} {TABLE} postrouting handle {h}" for fam, h, _ in victims]
    if cmds:
        nft.run("\n".join(cmds) + "\n")


def teardown(network: str, cid: str, ifname: str) -> None:
    want = tag(network, cid, ifname)
    _delete([r for r in _rules() if r[2] == want])


def gc(network: str, valid: set[tuple[str, str]]) -> list[str]:
    victims = []
    keep = {tag(network, cid, ifname) for cid, ifname in valid}
    for rule in _rules():
        net, _, _ = rule[2].partition(":")
        if net == network and rule[2] not in keep:
            victims.append(rule)
    _delete(victims)
    return [json.dumps(v[2]) for v in victims]
