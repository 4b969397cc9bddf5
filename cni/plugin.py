"""The in-process implementation: one request in, (exit code, stdout) out.

Used by ``cni.main`` in standalone mode and by ``cni.agent_server`` in thick
mode.  It never reads ``os.environ``: the request carries its environment.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from typing import Any

from cni import ipam_delegate, ipam_hostlocal, nft
from cni.config import Env, NetConf, decode, error_version, parse_env, parse_netconf
from cni.spec import (
    ERR_INTERNAL,
    ERR_NOT_AVAILABLE,
    LATEST,
    SUPPORTED,
    CNIError,
    version_reply,
)
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


def ipam_add(env: Env, conf: NetConf) -> dict[str, Any]:
    if builtin_ipam(conf):
        return ipam_hostlocal.allocate(conf.ipam, conf.name, env.container_id, env.ifname)
    return ipam_delegate.add(env, conf.raw, conf.ipam["type"])


def ipam_del(env: Env, conf: NetConf) -> None:
    if builtin_ipam(conf):
        ipam_hostlocal.release(conf.ipam, conf.name, env.container_id, env.ifname)
    else:
        ipam_delegate.delete(env, conf.raw, conf.ipam["type"])


def cmd_status(env: Env, conf: NetConf) -> Outcome:
    """STATUS: "The plugin is not available (i.e. cannot service ADD requests)" is 50."""
    if builtin_ipam(conf):
        ipam_hostlocal.status(conf.ipam, conf.name)
    elif ipam_delegate.speaks(env, conf.ipam["type"], "1.1.0"):
        ipam_delegate.invoke(env, "STATUS", conf.raw, conf.ipam["type"])
    else:
        ipam_delegate.find(env, conf.ipam["type"])
    if not nft.available():
        # Without nftables we cannot keep new pods fail-closed, so we refuse ADDs.
        raise CNIError(ERR_NOT_AVAILABLE, "nftables is not usable: cannot fail closed")
    return Outcome(0, "")


def execute(environ: dict[str, str], stdin: bytes) -> Outcome:
    version = ""
    try:
        env = parse_env(environ)
        if env.command == "VERSION":
            return Outcome(0, version_reply(stdin))
        conf = parse_netconf(decode(stdin), env.command)
        version = conf.version
        return _dispatch(env, conf)
    except CNIError as exc:
        return Outcome(1, exc.to_json(version or _safe_version(stdin)))
    except Exception as exc:  # every failure must become error JSON
        import traceback  # ~10 ms to import: only when something went wrong

        traceback.print_exc(file=sys.stderr)
        err = CNIError(ERR_INTERNAL, f"{type(exc).__name__}: {exc}")
        return Outcome(1, err.to_json(version or _safe_version(stdin)))


def _safe_version(stdin: bytes) -> str:
    version = error_version(stdin)
    return version if version in SUPPORTED else LATEST


def _dispatch(env: Env, conf: NetConf) -> Outcome:
    # Imported lazily so that each command loads only what it needs.
    if env.command == "ADD":
        from cni.add import cmd_add

        return cmd_add(env, conf)
    if env.command == "DEL":
        from cni.delcheck import cmd_del

        return cmd_del(env, conf)
    if env.command == "CHECK":
        from cni.delcheck import cmd_check

        return cmd_check(env, conf)
    if env.command == "GC":
        from cni.gc import cmd_gc

        return cmd_gc(env, conf)
    return cmd_status(env, conf)
