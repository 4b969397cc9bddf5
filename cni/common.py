"""What the CNI commands share: the outcome of a request, the host-side port
name and the IPAM entry points (built-in or delegated).

``cni.plugin`` dispatches to the commands (``cni.add``, ``cni.delcheck``,
``cni.gc``, ``cni.status``), which import from here and never from the
dispatcher, so the package has no import circle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from cni import ipam_delegate, ipam_hostlocal
from cni.config import Env, NetConf
from policyc.names import IFACE_PREFIX, pod_iface

# ipam.type values served in-process; anything else is exec'd from CNI_PATH.
BUILTIN_IPAM = ("policyc-host-local",)


@dataclass(frozen=True, slots=True)
class Added:
    """What the node agent needs to program a new pod before ADD returns."""

    namespace: str
    pod: str
    container_id: str
    iface: str
    ips: tuple[str, ...]


@dataclass(slots=True)
class Outcome:
    """One request's answer: exit ``code``, the ``stdout`` JSON, and for a
    successful ADD what the agent must program."""

    code: int
    stdout: str
    added: Added | None = field(default=None)


def host_ifname(env: Env) -> str:
    """Shared contract: ``pc`` + sha1("<ns>/<pod>")[:11], else sha1(containerID)."""
    ns, pod = env.arg("K8S_POD_NAMESPACE"), env.arg("K8S_POD_NAME")
    if ns and pod:
        return pod_iface(ns, pod)
    return IFACE_PREFIX + hashlib.sha1(env.container_id.encode()).hexdigest()[:11]


def builtin_ipam(conf: NetConf) -> bool:
    return conf.ipam["type"] in BUILTIN_IPAM


def ipam_validate(conf: NetConf) -> None:
    """Check the built-in IPAM's section (code 7); a delegate checks its own."""
    if builtin_ipam(conf):
        ipam_hostlocal.validate(conf.ipam)


def ipam_add(env: Env, conf: NetConf) -> dict[str, Any]:
    """Allocate: the IPAM result, normalized to the 1.1.0 shape."""
    if builtin_ipam(conf):
        return ipam_hostlocal.allocate(conf.ipam, conf.name, env.container_id, env.ifname)
    return ipam_delegate.add(env, conf.raw, conf.ipam["type"])


def ipam_del(env: Env, conf: NetConf) -> None:
    if builtin_ipam(conf):
        ipam_hostlocal.release(conf.ipam, conf.name, env.container_id, env.ifname)
    else:
        ipam_delegate.delete(env, conf.raw, conf.ipam["type"])
