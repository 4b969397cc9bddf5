"""Kernel prerequisites, safety guards and namespace bookkeeping for netlab.

* ``require_kernel()`` skips (or, with ``POLICYC_REQUIRE_KERNEL=1``, fails) a
  test when root, ``ip``, ``nft`` or network namespaces are unavailable.
* ``ip_batch`` runs ``ip -batch``; in the root namespace it only accepts
  ``netns add/del`` of this run's own names, so nothing else can leak there.
* Every netns created is registered and deleted by name at interpreter exit
  if its owner did not delete it (SIGTERM is turned into a clean exit).
"""

from __future__ import annotations

import atexit
import functools
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Sequence

import pytest

from .nsutil import NETNS_DIR, in_netns

REQUIRE_ENV = "POLICYC_REQUIRE_KERNEL"
NAME_PREFIX = "pct"

ALLOWED_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.244.0.0/16", "192.0.2.0/24", "2001:db8:244::/48")
)

NODE_SYSCTLS: dict[str, str | int] = {
    "net.ipv4.ip_forward": 1,
    "net.bridge.bridge-nf-call-iptables": 1,
    "net.bridge.bridge-nf-call-ip6tables": 1,
}
IPV6_NODE_SYSCTLS: dict[str, str | int] = {
    "net.ipv6.conf.all.forwarding": 1,
    "net.ipv6.conf.all.accept_dad": 0,
    "net.ipv6.conf.default.accept_dad": 0,
}
# Written before the pod's eth0 exists, so eth0 inherits them: its link-local
# address is usable at once (ND needs it), and it sends no router solicitations.
POD_SYSCTLS: dict[str, str | int] = {
    "net.ipv6.conf.all.accept_dad": 0,
    "net.ipv6.conf.default.accept_dad": 0,
    "net.ipv6.conf.default.router_solicitations": 0,
}

requires_kernel = pytest.mark.usefixtures("kernel_required")
"""Mark (e.g. ``pytestmark = requires_kernel``); needs the ``kernel_required``
fixture from ``fixtures.py`` to be visible (imported in the module or conftest)."""

_counter = itertools.count(1)
_live: set[str] = set()
_lock = threading.Lock()
_hooks_installed = False
_ROOT_CMD = re.compile(rf"^netns (add|del) ({NAME_PREFIX}\d+-\d+-[A-Za-z0-9_.-]+)$")


def check_addr(addr: str) -> str:
    """Return ``addr`` unchanged if it lies in the lab's address ranges, else raise."""
    ip = ipaddress.ip_address(addr)
    if not any(ip in net for net in ALLOWED_NETWORKS):
        raise ValueError(f"{addr} is outside the lab ranges {[str(n) for n in ALLOWED_NETWORKS]}")
    return addr


def new_prefix() -> str:
    """A netns-name prefix, unique per run and not used by any existing netns."""
    existing = os.listdir(NETNS_DIR) if os.path.isdir(NETNS_DIR) else []
    while True:
        prefix = f"{NAME_PREFIX}{os.getpid() % 10000}-{next(_counter)}-"
        if not any(n.startswith(prefix) for n in existing):
            return prefix


class Batch:
    """A running ``ip -batch``; ``wait_checked`` raises on failure."""

    def __init__(self, cmds: Sequence[str], netns: str | None, force: bool) -> None:
        if netns is None:
            for c in cmds:
                if not _ROOT_CMD.match(c):
                    raise ValueError(f"refusing to run {c!r} in the root namespace")
        argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else [])
        self.cmds = list(cmds)
        self.proc = subprocess.Popen(
            [*argv, "-batch", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.argv = argv

    def wait_checked(self) -> None:
        out, err = self.proc.communicate("\n".join(self.cmds) + "\n", timeout=60)
        if self.proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.argv)} -batch failed ({self.proc.returncode}): {err.strip()}\n"
                + "\n".join(self.cmds)
            )


def ip_batch(
    cmds: Sequence[str], netns: str | None = None, wait: bool = True, force: bool = False
) -> Batch:
    batch = Batch(cmds, netns, force)
    if wait:
        batch.wait_checked()
    return batch


def register_netns(names: Iterable[str]) -> None:
    global _hooks_installed
    with _lock:
        _live.update(names)
        if not _hooks_installed:
            _hooks_installed = True
            atexit.register(_cleanup_all)
            try:
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # not the main thread
                pass


def remove_netns(names: Iterable[str]) -> None:
    """Delete netns by name (only names this process registered)."""
    with _lock:
        mine = [n for n in names if n in _live]
    present = [n for n in mine if os.path.exists(os.path.join(NETNS_DIR, n))]
    try:
        if present:
            ip_batch([f"netns del {n}" for n in present], force=True)
    finally:
        with _lock:
            _live.difference_update(n for n in mine if not os.path.exists(f"{NETNS_DIR}/{n}"))


def live_netns() -> set[str]:
    with _lock:
        return set(_live)


def _cleanup_all() -> None:
    try:
        remove_netns(live_netns())
    except Exception:  # best effort at exit
        pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@functools.cache
def kernel_problem() -> str | None:
    """Why kernel tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    name = new_prefix() + "check"
    try:
        ip_batch([f"netns add {name}"])
    except Exception as exc:
        return f"cannot create a network namespace: {exc}"
    register_netns([name])
    try:
        with in_netns(name):
            pass
        r = subprocess.run(
            ["ip", "netns", "exec", name, "nft", "list", "ruleset"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            return f"nft does not work in a network namespace: {r.stderr.strip()}"
    except Exception as exc:
        return f"cannot enter a network namespace: {exc}"
    finally:
        remove_netns([name])
    return None


def require_kernel() -> None:
    """Skip the current test if the kernel harness cannot run; fail instead in CI.

    CI sets ``POLICYC_REQUIRE_KERNEL=1`` so that a missing prerequisite is a
    failure, not a silently skipped suite.
    """
    problem = kernel_problem()
    if problem is None:
        return
    reason = f"kernel tests unavailable: {problem}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)
