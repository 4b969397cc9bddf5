"""Scratch network namespaces for the benchmark, created and deleted by name.

Every name starts with ``pcb<pid>-`` and is deleted by ``Scratch.close()``
(also at interpreter exit), even when the benchmark fails; the root
namespace is never configured.  ``ip`` (iproute2) does the work, as in the
kernel tests: ``ip netns add/del`` bind-mounts the namespace under
``/run/netns`` so that ``ip netns exec NAME`` and ``setns`` can reach it.
"""

from __future__ import annotations

import atexit
import os
import subprocess
from collections.abc import Sequence

NETNS_DIR = "/run/netns"


class ScratchError(RuntimeError):
    """An ``ip`` command failed; the message carries its stderr."""


def ip(args: Sequence[str], netns: str | None = None, stdin: str | None = None) -> None:
    """``ip [-n NETNS] ARGS``; ``stdin`` for ``-batch -``.  Raises ScratchError."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ScratchError(f"{' '.join(argv)}: {proc.stderr.strip()}")


def batch(cmds: Sequence[str], netns: str) -> None:
    """Several ``ip`` commands inside ``netns`` in one process (``ip -batch -``)."""
    ip(["-batch", "-"], netns, "\n".join(cmds) + "\n")


def sysctl(netns: str, key: str, value: int) -> bool:
    """Set a ``net.*`` sysctl inside ``netns``; False if the key does not exist there
    (e.g. ``net.bridge.*`` without br_netfilter)."""
    path = "/proc/sys/" + key.replace(".", "/")
    argv = ["ip", "netns", "exec", netns, "sh", "-c", f"[ -e {path} ] && echo {value} > {path}"]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


class Scratch:
    """Named network namespaces owned by this process."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"pcb{os.getpid() % 100000}-{tag}-"
        self.names: list[str] = []
        atexit.register(self.close)

    def add(self, suffix: str) -> str:
        """Create netns ``<prefix><suffix>`` with ``lo`` up; returns its name."""
        name = self.prefix + suffix
        if os.path.exists(os.path.join(NETNS_DIR, name)):
            raise ScratchError(f"netns {name} exists already: not ours, left alone")
        ip(["netns", "add", name])
        self.names.append(name)
        ip(["link", "set", "lo", "up"], name)
        return name

    def close(self) -> None:
        """Delete every namespace created here, by name; idempotent."""
        while self.names:
            name = self.names.pop()
            if os.path.exists(os.path.join(NETNS_DIR, name)):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        atexit.unregister(self.close)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
