"""STATUS (CNI 1.1.0): can this plugin service ADD requests now?"""

from __future__ import annotations

from cni import ipam_delegate, ipam_hostlocal, nft
from cni.common import Outcome, builtin_ipam
from cni.config import Env, NetConf
from cni.spec import ERR_NOT_AVAILABLE, CNIError


def cmd_status(env: Env, conf: NetConf) -> Outcome:
    """STATUS: "The plugin is not available (i.e. cannot service ADD requests)" is 50."""
    if builtin_ipam(conf):
        ipam_hostlocal.status(conf.ipam, conf.name)
    elif ipam_delegate.speaks(env, conf.ipam["type"], "1.1.0"):
        ipam_delegate.invoke(env, "STATUS", conf.raw, conf.ipam["type"])
    else:
        ipam_delegate.find(env, conf.ipam["type"])
    if conf.fail_closed and not nft.available():
        # Without nftables we cannot keep new pods fail-closed, so we refuse ADDs.
        raise CNIError(ERR_NOT_AVAILABLE, "nftables is not usable: cannot fail closed")
    return Outcome(0, "")
