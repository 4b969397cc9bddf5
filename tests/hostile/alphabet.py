"""Hostile strings: for invalid input (anything at all) and for API-valid
fields (characters the Kubernetes validation rules allow, chosen to be the
words and punctuation that mean something to a shell, nft, iptables-restore
or ipset restore)."""

from __future__ import annotations

import random

# Words the restore tools read as commands or options; valid label names.
COMMAND_WORDS = (
    "flush",
    "destroy",
    "swap",
    "add",
    "del",
    "create",
    "COMMIT",
    "commit",
    "delete",
    "table",
    "chain",
    "drop",
    "accept",
    "A",
    "j",
    "exist",
    "nomatch",
    "policyc",
    "POLICYC-FORWARD",
    "policyc-node4",
    "ruleset",
    "x",
)
# Scalars YAML would retype if an emitter forgot to quote them.
YAML_WORDS = ("true", "null", "yes", "on", "0", "0x1F", "1e3", "-1", "nan", "~", "0o17")

CONTROL = tuple(chr(c) for c in (*range(0, 32), 127, *range(0x80, 0xA0)))
UNICODE = ("é", "ß", "İ", "ﬁ", "‮", "​", "\u2028", "\u2029", "\ufeff", "𝔘", "中", "🙂", "\ud7ff")
INJECT = (
    "\npolicyc: error: forged.yaml:1:1: FORGED",
    '" ; flush ; "',
    "\n-A POLICYC-FORWARD -j ACCEPT\n",
    "\nflush\n",
    "}\n} table inet x {",
    "$(reboot)",
    "%s%n",
    "../../etc/passwd",
)


def any_string(r: random.Random) -> str:
    """A string an attacker might put in any field: control characters,
    odd unicode, injection payloads, very long runs."""
    pick = r.randrange(7)
    if pick == 0:
        return "a" + "".join(r.choice(CONTROL) for _ in range(r.randint(1, 3))) + "b"
    if pick == 1:
        return "".join(r.choice(UNICODE) for _ in range(r.randint(1, 8)))
    if pick == 2:
        return r.choice(INJECT)
    if pick == 3:
        return r.choice("ak-._/") * r.choice((64, 254, 1024, 70000))
    if pick == 4:
        return r.choice(YAML_WORDS)
    if pick == 5:
        return ""
    return r.choice(COMMAND_WORDS) + r.choice(INJECT)


def _name_chars(r: random.Random, n: int, alphabet: str) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def dns_label(r: random.Random, max_len: int = 63) -> str:
    """RFC 1123 label: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63."""
    if r.random() < 0.3:
        word = r.choice([w for w in COMMAND_WORDS if w.islower() and w.isalpha()])
        return word[:max_len]
    n = r.choice((1, 2, r.randint(1, max_len), max_len))
    if n == 1:
        return r.choice("abcdefghijklmnopqrstuvwxyz0123456789")
    inner = _name_chars(r, n - 2, "a-0-z-9-")
    return r.choice("a0z9") + inner + r.choice("a0z9")


def dns_subdomain(r: random.Random, max_len: int = 253) -> str:
    """RFC 1123 subdomain: dot-joined labels, at most 253 (often exactly)."""
    if r.random() < 0.2:
        full = ".".join(dns_label(r, 63).ljust(63, "a") for _ in range(4))
        return full[: max_len - 1].rstrip(".-") + "z"
    parts, size = [], 0
    while True:
        label = dns_label(r, min(63, max_len - size))
        parts.append(label)
        size += len(label) + 1
        if size >= max_len - 2 or r.random() < 0.5:
            return ".".join(parts)[:max_len].rstrip(".-") or "a"


def label_name(r: random.Random) -> str:
    """Qualified name part: ``[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?``, at most 63."""
    if r.random() < 0.35:
        return r.choice(COMMAND_WORDS)
    n = r.choice((1, r.randint(2, 63), 63))
    if n == 1:
        return r.choice("aZ9")
    return r.choice("aZ09") + _name_chars(r, n - 2, "-_.aZ9--__..") + r.choice("aZ09")


def label_key(r: random.Random) -> str:
    """``[prefix/]name``; prefix a DNS subdomain of at most 253."""
    if r.random() < 0.4:
        return dns_subdomain(r) + "/" + label_name(r)
    return label_name(r)


def label_value(r: random.Random) -> str:
    """Empty or a qualified name part (at most 63)."""
    return "" if r.random() < 0.1 else label_name(r)


def port_name(r: random.Random) -> str:
    """IANA_SVC_NAME: at most 15 of ``[a-z0-9-]``, a letter, no ``--``, no
    leading or trailing ``-``."""
    for _ in range(100):
        n = r.randint(1, 15)
        s = _name_chars(r, n, "abcxyz0189-")
        if any(c.isalpha() for c in s) and "--" not in s and s[0] != "-" and s[-1] != "-":
            return s
    return "p"
