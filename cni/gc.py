"""GC: remove what is not in ``cni.dev/valid-attachments``.

SPEC 1.1.0 GC: "The plugin should remove any resources related to
attachments that are not in the list of valid attachments" - here veths,
IPAM allocations and masquerade rules.  A killed ADD leaves at most these
three kinds of things, each tagged with its attachment, so GC can find them.
"""

from __future__ import annotations

import sys

from cni import ipam_delegate, ipam_hostlocal, masq, netlink
from cni.common import Outcome, builtin_ipam
from cni.config import Env, NetConf
from policyc.names import IFACE_PREFIX


def stale_veths(node: netlink.Rtnl, network: str, valid: set[tuple[str, str]]) -> list[str]:
    """Ports tagged for this network whose attachment is gone, plus untagged,
    detached, down ``pc*`` veths (an ADD killed between create and tag)."""
    out = []
    for link in netlink.links(node):
        if link.kind != "veth" or not link.name.startswith(IFACE_PREFIX):
            continue
        tag = netlink.parse_alias(link.alias)
        if tag is None:
            if not link.alias and not link.master and not link.up:
                out.append(link.name)
            continue
        net, cid, ifname = tag
        if net == network and (cid, ifname) not in valid:
            out.append(link.name)
    return out


def cmd_gc(env: Env, conf: NetConf) -> Outcome:
    valid = set(conf.valid_attachments)
    node = netlink.node()
    for name in stale_veths(node, conf.name, valid):
        netlink.delete_link(node, name)
    if builtin_ipam(conf):
        ipam_hostlocal.gc(conf.ipam, conf.name, valid)
    elif ipam_delegate.speaks(env, conf.ipam["type"], "1.1.0"):
        # SPEC: "Plugins that delegate IPAM should also delegate GC".
        ipam_delegate.invoke(env, "GC", conf.raw, conf.ipam["type"])
    else:
        print(f"policyc-cni: {conf.ipam['type']} predates GC; skipped", file=sys.stderr)
    masq.gc(conf.name, valid)
    return Outcome(0, "")
