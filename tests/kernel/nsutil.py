"""Per-thread network-namespace switching, standard library only.

Python 3.11 has no ``os.setns``, so this calls ``libc.setns(fd, CLONE_NEWNET)``
through ctypes.  A network-namespace switch affects only the calling thread,
and a socket keeps the namespace it was created in for its whole life, so the
harness creates sockets inside a pod's namespace and then switches back.

Used both by the test process (``netlab``, ``probes``) and by the standalone
server process (``servers.py``), which is why nothing here imports pytest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
THREAD_NETNS = "/proc/thread-self/ns/net"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    """A namespace switch failed or landed somewhere unexpected."""


def netns_path(name: str) -> str:
    """Path of a named netns (``ip netns add NAME`` bind-mounts it there)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad netns name {name!r}")
    return os.path.join(NETNS_DIR, name)


def netns_exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns(CLONE_NEWNET) failed: {os.strerror(err)}")


def current_netns_inode() -> int:
    """Inode of the calling thread's network namespace."""
    return os.stat(THREAD_NETNS).st_ino


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside netns ``name``.

    The previous namespace is restored on exit, even on error, and both the
    switch and the restore are verified by namespace inode.  Only the calling
    thread moves; anything forked meanwhile inherits the pod namespace, so
    keep the body to socket creation and ``/proc/sys/net`` writes.
    """
    orig = os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        orig_ino = os.fstat(orig).st_ino
        target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            target_ino = os.fstat(target).st_ino
            if target_ino == orig_ino:
                raise NetnsError(f"netns {name!r} is the namespace we are already in")
            _setns(target)
        finally:
            os.close(target)
        try:
            if current_netns_inode() != target_ino:
                raise NetnsError(f"setns into {name!r} did not take effect")
            yield
        finally:
            _setns(orig)
            if current_netns_inode() != orig_ino:
                raise NetnsError("could not return to the original network namespace")
    finally:
        os.close(orig)


def _sysctl_path(key: str) -> str:
    if not key.startswith("net.") or ".." in key:
        raise ValueError(f"only net.* sysctls are per-namespace: {key!r}")
    return "/proc/sys/" + key.replace(".", "/")


def write_sysctls(netns: str, values: Mapping[str, str | int]) -> None:
    """Write ``net.*`` sysctls inside ``netns`` (never in the caller's own namespace).

    ``/proc/sys/net`` resolves against the *calling thread's* namespace, so
    writing it after ``setns`` changes only the target namespace.
    """
    with in_netns(netns):
        for key, value in values.items():
            with open(_sysctl_path(key), "w") as f:
                f.write(f"{value}\n")


def read_sysctl(netns: str, key: str) -> str:
    with in_netns(netns):
        with open(_sysctl_path(key)) as f:
            return f.read().strip()
