"""Names shared between the compiler, the CNI plugin and the watcher.

The pod interface contract (docs/contract.md): the host side of a pod's veth
is ``pc`` + the first 11 hex digits of sha1("<namespace>/<pod name>"), which
is 13 characters and fits IFNAMSIZ (15).  ``x/a`` -> ``pce4fccf5a38c``.
"""

from __future__ import annotations

import hashlib

# The fail-closed contract between the compiler and policyc-cni
# (cni/failclosed.py): ``table bridge policyc`` has a ``prerouting`` chain that
# drops frames from every ``pc*`` port that is not a programmed pod port.
IFACE_PREFIX = "pc"
TABLE = "policyc"
BRIDGE_FAMILY = "bridge"
BRIDGE_CHAIN = "prerouting"


def pod_iface(namespace: str, name: str) -> str:
    digest = hashlib.sha1(f"{namespace}/{name}".encode()).hexdigest()
    return IFACE_PREFIX + digest[:11]


def short_hash(text: str, n: int = 8) -> str:
    """Stable content hash used to name sets and chains."""
    return hashlib.sha1(text.encode()).hexdigest()[:n]
