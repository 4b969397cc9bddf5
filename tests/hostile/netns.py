"""Network namespaces this suite creates, each deleted by name even on failure.

Names are ``pcfz-<pid>-<n>``, unique per process, so parallel helpers and a
crashed earlier run can never collide with (or delete) anybody else's.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

_COUNTER = itertools.count()
PREFIX = "pcfz"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def fresh_netns(tag: str = "") -> Iterator[str]:
    """Yield the name of a new, empty network namespace; delete it on exit."""
    name = f"{PREFIX}-{os.getpid()}-{next(_COUNTER)}{('-' + tag) if tag else ''}"[:40]
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def sh(netns: str, script: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run a shell snippet inside ``netns`` (never in the caller's namespace)."""
    return subprocess.run(
        ["ip", "netns", "exec", netns, "sh", "-c", script],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=120,
    )


def snapshot(netns: str) -> dict[str, str]:
    """Everything policyc could change in ``netns``: nft ruleset, ipsets,
    iptables and ip6tables (without counters), ebtables."""
    cmds = {
        "nft": "nft list ruleset",
        "ipset": "ipset save",
        "iptables": "iptables-save | grep -v '^#'",
        "ip6tables": "ip6tables-save | grep -v '^#'",
        "ebtables": "ebtables-save 2>/dev/null | grep -v '^#'",
    }
    return {k: sh(netns, cmd).stdout.decode("utf-8", "backslashreplace") for k, cmd in cmds.items()}


FOREIGN_NFT = b"""table inet foreign {
\tset s { type ipv4_addr; elements = { 192.0.2.1 } }
\tchain c { type filter hook forward priority 10; ip saddr @s counter accept comment "foreign"; }
}
"""
FOREIGN_SETUP = """
ipset create foreign-set hash:ip family inet
ipset add foreign-set 192.0.2.7
iptables -N FOREIGN
iptables -A FOREIGN -s 192.0.2.8/32 -m comment --comment foreign -j ACCEPT
iptables -A FORWARD -j FOREIGN
"""


def add_foreign(netns: str) -> None:
    """A foreign nft table, a foreign ipset and a foreign iptables chain:
    things another component owns and policyc must leave alone."""
    res = sh(netns, "nft -f -", FOREIGN_NFT)
    assert res.returncode == 0, res.stderr
    res = sh(netns, FOREIGN_SETUP.strip().replace("\n", " && "))
    assert res.returncode == 0, res.stderr


def foreign_state(netns: str) -> dict[str, str]:
    """Only the foreign objects (with their counters zeroed out of the text)."""
    cmds = {
        "nft": "nft list table inet foreign | sed 's/packets [0-9]* bytes [0-9]*//'",
        "ipset": "ipset save foreign-set",
        "iptables": "iptables -S FOREIGN && iptables -S FORWARD | grep -c FOREIGN",
    }
    return {k: sh(netns, cmd).stdout.decode("utf-8", "backslashreplace") for k, cmd in cmds.items()}
