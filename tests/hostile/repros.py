"""The specific repros of issue 13 §1–§3, each as one named input.

Each is built from text here (not a checked-in file) so that its size is
exact and visible: the billion-laughs file is about 330 bytes, the integer has
4,301 digits, and so on.  ``REPROS`` maps the test id to the input.
"""

from __future__ import annotations

from pathlib import Path

from tests.hostile.inputs import Expect, HostileInput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BASE = (FIXTURES / "_base" / "cluster.yaml").read_bytes()
CLASS = "repro"


def _policy(spec: str, name: str = "p", ns: str = "x") -> bytes:
    head = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n"
    )
    return (head + spec).encode()


def _with_base(
    ident: str, policy: bytes, expect: Expect, name: str = "policy.yaml"
) -> HostileInput:
    return HostileInput(CLASS, ident, (("cluster.yaml", BASE), (name, policy)), expect)


def _alone(ident: str, body: bytes, expect: Expect, name: str = "in.yaml") -> HostileInput:
    return HostileInput(CLASS, ident, ((name, body),), expect)


def exists_flush() -> HostileInput:
    """§1: ``Exists`` on 16 long keys plus the key ``flush``, ``ingress: [{}]``;
    its ipset comment line was 1,028 bytes and ran ``flush`` as a command."""
    keys = [f"example.com/{'k' * 52}{i:02d}" for i in range(16)] + ["flush"]
    exprs = "".join(f"    - {{key: {k}, operator: Exists}}\n" for k in keys)
    spec = f"  podSelector:\n    matchExpressions:\n{exprs}  ingress: [{{}}]\n"
    return _with_base("exists-16-long-keys-flush", _policy(spec), Expect.VALID)


def except_128() -> HostileInput:
    """§1: an ipBlock with 128 ``except`` entries (a 3,914-byte ipset line)."""
    excepts = ", ".join(f"10.244.{i // 64}.{(i % 64) * 4}/30" for i in range(128))
    spec = (
        "  podSelector: {}\n  ingress:\n  - from:\n"
        f"    - ipBlock: {{cidr: 10.244.0.0/16, except: [{excepts}]}}\n"
    )
    return _with_base("ipblock-128-excepts", _policy(spec), Expect.VALID)


def _node(
    ident: str, status_addr: str, cidrs: list[str], legacy: str | None = None
) -> HostileInput:
    spec = f"  podCIDR: {legacy}\n" if legacy else f"  podCIDRs: [{', '.join(cidrs)}]\n"
    body = (
        "apiVersion: v1\nkind: Node\nmetadata: {name: node-9}\nspec:\n" + spec + "status:\n"
        f"  addresses:\n  - {{type: InternalIP, address: '{status_addr}'}}\n"
    )
    return HostileInput(
        CLASS, ident, (("cluster.yaml", BASE), ("node.yaml", body.encode())), Expect.VALID
    )


def nodes() -> list[HostileInput]:
    """§1 a Node at 0.0.0.0; §3 all-ones pod CIDRs (IPv4, IPv6, legacy podCIDR)."""
    ones6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
    return [
        _node("node-address-0.0.0.0", "0.0.0.0", ["10.244.9.0/24"]),
        # The same kind in IPv6, not listed in issue 13: found by this suite.
        _node("node-address-ipv6-unspecified", "::", ["10.244.9.0/24"]),
        _node("node-podcidr-255.255.255.255-32", "192.0.2.99", ["255.255.255.255/32"]),
        _node("node-podcidr-ipv6-all-ones-128", "192.0.2.99", [ones6]),
        _node("node-legacy-podcidr-all-ones", "192.0.2.99", [], legacy="255.255.255.255/32"),
    ]


def billion_laughs() -> HostileInput:
    """§2: the classic alias bomb, about 330 bytes, 10^9 leaves if expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    body = "kind: Namespace\napiVersion: v1\nmetadata: {name: x}\n" + "\n".join(lines) + "\n"
    return _alone("billion-laughs", body.encode(), Expect.INVALID)


def deep_nesting() -> list[HostileInput]:
    """§2: 500 nested flow sequences, and an alias inside its own anchor."""
    deep = "[" * 500 + "]" * 500
    nested = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: x, labels: {deep}}}\n"
    selfref = _policy("  podSelector: &a {matchLabels: {a: b}, matchExpressions: [*a]}\n")
    return [
        _alone("nested-500-flow-sequences", nested.encode(), Expect.INVALID),
        _with_base("alias-inside-own-anchor", selfref, Expect.INVALID),
    ]


def control_and_ints() -> list[HostileInput]:
    """§2: one raw control character; an integer of 4,301 digits."""
    ctrl = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: x\x07y}\n"
    digits = "9" * 4301
    port = _policy(f"  podSelector: {{}}\n  ingress:\n  - ports: [{{port: {digits}}}]\n")
    return [
        _alone("one-control-character", ctrl, Expect.INVALID),
        _with_base("integer-4301-digits", port, Expect.INVALID),
    ]


def error_text() -> list[HostileInput]:
    """§3: newlines and ESC/NUL in label keys and kinds must reach stderr escaped."""
    forged = "\\npolicyc: error: forged.yaml:1:1: FORGED"
    ns = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels: {{"{key}": v}}\n'
    return [
        _alone(
            "newline-in-kind",
            f'apiVersion: v1\nkind: "Foo{forged}"\nmetadata: {{name: x}}\n'.encode(),
            Expect.EITHER,
        ),
        _alone("newline-in-label-key", ns.format(key=f"a{forged}").encode(), Expect.INVALID),
        _alone("esc-in-label-key", ns.format(key="a\\e[31mred").encode(), Expect.INVALID),
        _alone("nul-in-label-key", ns.format(key="a\\0b").encode(), Expect.INVALID),
        _alone(
            "esc-in-kind",
            b'apiVersion: v1\nkind: "Foo\\e[2J"\nmetadata: {name: x}\n',
            Expect.EITHER,
        ),
        # Not in issue 13, found by this suite: raw in the error's field path.
        _alone(
            "u2028-in-label-key", ns.format(key="a\\u2028" + forged[2:]).encode(), Expect.INVALID
        ),
        _alone("bidi-override-in-label-key", ns.format(key="a\\u202eb").encode(), Expect.INVALID),
        _alone("c1-nel-in-label-key", ns.format(key="a\\x85b").encode(), Expect.INVALID),
    ]


def pol_errors() -> list[HostileInput]:
    """§3: ``.pol`` syntax errors must carry a real location (and the object)."""
    bad = {
        "pol-missing-brace": (
            "policy web in x {\n  select pod in (a,b)\n  ingress {\n    allow from pods(pod=c)\n}\n"
        ),
        "pol-bad-token": (
            "policy web in x {\n  ingress {\n    allow fron pods(pod=c) ports tcp/80\n  }\n}\n"
        ),
        "pol-unterminated": "policy web in x {\n  select pod in (a,b)\n  ingress {\n",
        "pol-garbage": "policy ??? in x { }\n",
    }
    return [
        HostileInput(
            CLASS, ident, (("cluster.yaml", BASE), ("policy.pol", text.encode())), Expect.INVALID
        )
        for ident, text in bad.items()
    ]


def all_repros() -> list[HostileInput]:
    """Every repro, in a stable order."""
    return [
        exists_flush(),
        except_128(),
        *nodes(),
        billion_laughs(),
        *deep_nesting(),
        *control_and_ints(),
        *error_text(),
        *pol_errors(),
    ]


REPROS = {inp.ident: inp for inp in all_repros()}
