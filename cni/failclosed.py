"""Fail closed: a ``pc*`` port drops every frame until policy knows it.

Contract with the compiler: its ruleset contains ``table bridge policyc``
whose prerouting chain drops frames from any ``pc*`` port that is not a known
pod port.  On a node where that table does not exist yet, we install a
minimal one that drops *every* ``pc*`` port, and we do it before the veth is
attached to the bridge, so no frame from a new pod ever crosses unprogrammed.
An existing table is never replaced or edited.
"""

from __future__ import annotations

from cni import nft

TABLE = "policyc"
FAMILY = "bridge"

# `create table` fails with EEXIST inside the transaction, so the whole
# transaction is a no-op when the table exists: atomic, race-free, idempotent.
MINIMAL = f"""create table {FAMILY} {TABLE}
add chain {FAMILY} {TABLE} prerouting {{
    type filter hook prerouting priority -300; policy accept;
}}
add rule {FAMILY} {TABLE} prerouting iifname "pc*" drop
"""


class FailClosedError(Exception):
    pass


def table_exists() -> bool:
    try:
        nft.run(f"list table {FAMILY} {TABLE}")
    except nft.NftError:
        return False
    return True


def ensure() -> bool:
    """Make sure ``table bridge policyc`` exists; True if we created it."""
    if table_exists():  # cheap (~0.1 ms); a failed `create` costs ~10 ms
        return False
    try:
        nft.run(MINIMAL)
        return True
    except nft.NftError as exc:
        if table_exists():
            return False
        raise FailClosedError(f"cannot install fail-closed table: {exc}") from exc
