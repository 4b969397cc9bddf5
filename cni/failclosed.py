"""Fail closed: a ``pc*`` port drops every frame until policy knows it.

Contract with the compiler: its ruleset contains ``table bridge policyc``
whose prerouting chain drops frames from any ``pc*`` port that is not a known
pod port.  On a node where that table does not exist yet, we install a
minimal one that drops *every* ``pc*`` port, and we do it before the veth is
attached to the bridge, so no frame from a new pod ever crosses unprogrammed.
An existing table is never replaced or edited.
"""

from __future__ import annotations

import errno
import struct

from cni import netlink, nft
from policyc.names import BRIDGE_CHAIN, BRIDGE_FAMILY, IFACE_PREFIX, TABLE

FAMILY = BRIDGE_FAMILY  # the nft family name, as `create table bridge policyc` spells it

# `create table` fails with EEXIST inside the transaction, so the whole
# transaction is a no-op when the table exists: atomic, race-free, idempotent.
MINIMAL = f"""create table {FAMILY} {TABLE}
add chain {FAMILY} {TABLE} {BRIDGE_CHAIN} {{
    type filter hook prerouting priority -300; policy accept;
}}
add rule {FAMILY} {TABLE} {BRIDGE_CHAIN} iifname "{IFACE_PREFIX}*" drop
"""


class FailClosedError(Exception):
    pass


# NFT_MSG_GETTABLE of one table, straight over nfnetlink: ~10 us, where
# `nft list table` costs ~0.15 ms and grows with the rules in the table.
NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE, NFTA_TABLE_NAME = 10, 1, 1
NFPROTO_BRIDGE, NFNETLINK_V0 = 7, 0
_GETTABLE = (
    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
    0,
    struct.pack("=BBH", NFPROTO_BRIDGE, NFNETLINK_V0, 0) + netlink.nla_str(NFTA_TABLE_NAME, TABLE),
)


def table_exists() -> bool:
    try:
        netlink.node(netlink.NETLINK_NETFILTER).request(*_GETTABLE)
        return True
    except netlink.NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return False
    except OSError:
        pass
    try:  # anything unexpected: ask libnftables
        nft.run(f"list table {FAMILY} {TABLE}")
    except nft.NftError:
        return False
    return True


def ensure() -> bool:
    """Make sure ``table bridge policyc`` exists; True if we created it."""
    if table_exists():  # cheap (~20 us); a failed `create` costs ~10 ms
        return False
    try:
        nft.run(MINIMAL)
        return True
    except nft.NftError as exc:
        if table_exists():
            return False
        raise FailClosedError(f"cannot install fail-closed table: {exc}") from exc
