"""The pod reachability matrix: for every (source, destination) pod pair,
is a new connection to PORT/PROTO allowed, per address family?

The verdicts are the reference evaluator's (``policyc.evaluate``); this
module only chooses the pods, resolves the port and folds the IPv4 and IPv6
verdicts into one mark.  Renderers: ``matrix_text``, ``matrix_json``
(here) and ``policyc.html.matrix_html``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from policyc.errors import InputError, clipped, printable
from policyc.evaluate import Evaluator
from policyc.model import Cluster, IPAddress, Pod, Protocol


class Mark(StrEnum):
    """One cell, folding the verdict of each address family both pods hold."""

    ALLOWED = "."
    DENIED = "X"
    ONLY_V4 = "4"  # allowed over IPv4, denied over IPv6
    ONLY_V6 = "6"  # allowed over IPv6, denied over IPv4
    NO_PORT = "-"  # the destination has no container port of that name
    NO_FAMILY = "~"  # the two pods share no address family


LEGEND: dict[Mark, str] = {
    Mark.ALLOWED: "allowed (every address family both pods have)",
    Mark.DENIED: "denied",
    Mark.ONLY_V4: "allowed over IPv4 only, denied over IPv6",
    Mark.ONLY_V6: "allowed over IPv6 only, denied over IPv4",
    Mark.NO_PORT: "the destination has no container port of that name",
    Mark.NO_FAMILY: "no address family in common",
}
# What every output of ``matrix --audited`` says first, so that an audited
# matrix is never read as the enforced one (it printed the same header).
AUDITED_NOTE = "audited verdicts: as if every policyc.io/mode: audit policy were enforced"


@dataclass(frozen=True, slots=True)
class PortQuery:
    """``--port``: a number, or a container port name resolved per destination
    pod ("If this is a string, it will be looked up as a named port in the
    selected pods' container ports", NetworkPolicyPort.port)."""

    number: int | None
    name: str | None
    protocol: Protocol | None  # None with a name: whichever protocol the name has

    def __str__(self) -> str:
        what = str(self.number) if self.name is None else self.name
        return what + (f"/{self.protocol}" if self.protocol else "")

    def resolve(self, dst: Pod) -> tuple[int, Protocol] | None:
        """(port, protocol) at ``dst``, or None if it has no port of that name."""
        if self.number is not None:
            return self.number, self.protocol or Protocol.TCP
        for cp in dst.ports:
            if cp.name == self.name and self.protocol in (None, cp.protocol):
                return cp.port, cp.protocol
        return None


def parse_port(text: str) -> PortQuery:
    """``PORT[/PROTOCOL]`` or ``NAME[/PROTOCOL]``; InputError (exit 2)
    otherwise, and for an empty protocol after the slash (``80/``).

    A name follows IANA_SVC_NAME (ContainerPort.name): at most 15 lowercase
    letters, digits and '-', with at least one letter.
    """
    port, slash, proto_text = text.partition("/")
    protos = {p.value for p in Protocol}
    proto = Protocol(proto_text.upper()) if proto_text.upper() in protos else None
    bad = f"port {clipped(printable(text))!r}: want PORT[/PROTOCOL] or NAME[/PROTOCOL]"
    if proto_text.upper() in ("ICMP", "ICMPV6"):
        raise InputError(
            f"port {clipped(printable(text))!r}: NetworkPolicy does not match ICMP "
            "(its protocols are TCP, UDP and SCTP)"
        )
    if slash and proto is None:
        raise InputError(f"{bad}, PROTOCOL one of TCP, UDP, SCTP")
    if port.isascii() and port.isdigit():
        if len(port) > 5 or not 1 <= int(port) <= 65535:
            raise InputError(f"{bad}, PORT 1-65535")
        return PortQuery(int(port), None, proto or Protocol.TCP)
    name_ok = (
        0 < len(port) <= 15
        and all(c.islower() or c.isdigit() or c == "-" for c in port)
        and port.isascii()
        and any(c.isalpha() for c in port)
    )
    if not name_ok:
        raise InputError(f"{bad}, NAME a container port name (IANA_SVC_NAME)")
    return PortQuery(None, port, proto)


@dataclass(frozen=True, slots=True)
class Cell:
    """``v4``/``v6``: the family's verdict, None where either pod lacks it."""

    mark: Mark
    port: int | None
    protocol: Protocol | None
    v4: bool | None
    v6: bool | None


@dataclass(frozen=True, slots=True)
class Matrix:
    """``cells[i][j]``: from ``pods[i]`` to ``pods[j]``."""

    query: PortQuery
    pods: tuple[Pod, ...]
    cells: tuple[tuple[Cell, ...], ...]
    audited: bool = False  # the audited verdicts (AUDITED_NOTE), not the enforced ones

    def counts(self) -> dict[Mark, int]:
        out = dict.fromkeys(Mark, 0)
        for row in self.cells:
            for c in row:
                out[c.mark] += 1
        return out


def _first(ips: Iterable[IPAddress], version: int) -> IPAddress | None:
    return next((ip for ip in ips if ip.version == version), None)


def _fold(v4: bool | None, v6: bool | None) -> Mark:
    got = [v for v in (v4, v6) if v is not None]
    if not got:
        return Mark.NO_FAMILY
    if all(got):
        return Mark.ALLOWED
    if not any(got):
        return Mark.DENIED
    return Mark.ONLY_V4 if v4 else Mark.ONLY_V6


def _cell(ev: Evaluator, src: Pod, dst: Pod, query: PortQuery) -> Cell:
    at = query.resolve(dst)
    if at is None:
        return Cell(Mark.NO_PORT, None, None, None, None)
    port, proto = at
    verdicts: list[bool | None] = []
    for version in (4, 6):
        s, d = _first(src.ips, version), _first(dst.ips, version)
        ok = None if s is None or d is None else ev.allowed(s, d, port, proto).allowed
        verdicts.append(ok)
    return Cell(_fold(*verdicts), port, proto, verdicts[0], verdicts[1])


def matrix_pods(
    cluster: Cluster, namespaces: Iterable[str] = (), node: str | None = None
) -> tuple[Pod, ...]:
    """The pods with an address (not hostNetwork), by namespace and name,
    kept to ``namespaces`` (all when empty) and to pods on ``node``."""
    keep = set(namespaces)
    pods = (
        p
        for p in cluster.pods
        if p.ips
        and not p.host_network
        and (not keep or p.namespace in keep)
        and (node is None or p.node_name == node)
    )
    return tuple(sorted(pods, key=lambda p: (p.namespace, p.name)))


def build_matrix(
    cluster: Cluster,
    query: PortQuery,
    namespaces: Iterable[str] = (),
    node: str | None = None,
    audited: bool = False,
) -> Matrix:
    """The matrix over ``matrix_pods(cluster, namespaces, node)``; the
    verdicts still see every policy and pod in ``cluster``.  ``audited``:
    the verdicts as if every ``policyc.io/mode: audit`` policy were
    enforced (docs/observability.md), instead of the enforced ones."""
    ev = Evaluator(cluster, audited=audited)
    pods = matrix_pods(cluster, namespaces, node)
    cells = tuple(tuple(_cell(ev, s, d, query) for d in pods) for s in pods)
    return Matrix(query, pods, cells, audited)


def matrix_json(m: Matrix) -> dict[str, object]:
    """A JSON-ready dict: the port, the legend, the pods (with their index,
    counted from 1 as in the text) and one entry per cell, row-major.  An
    audited matrix adds ``"verdicts": "audited"`` and ``"note"``
    (AUDITED_NOTE); the enforced one has neither, as before."""
    head: dict[str, object] = {"verdicts": "audited", "note": AUDITED_NOTE} if m.audited else {}
    return head | {
        "port": str(m.query),
        "legend": {mark.value: text for mark, text in LEGEND.items()},
        "pods": [
            {
                "index": i + 1,
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node_name,
                "ips": [str(ip) for ip in p.ips],
            }
            for i, p in enumerate(m.pods)
        ],
        "cells": [
            {
                "from": m.pods[i].namespace + "/" + m.pods[i].name,
                "to": m.pods[j].namespace + "/" + m.pods[j].name,
                "mark": c.mark.value,
                "port": c.port,
                "protocol": c.protocol.value if c.protocol else None,
                "ipv4": c.v4,
                "ipv6": c.v6,
            }
            for i, row in enumerate(m.cells)
            for j, c in enumerate(row)
        ],
    }
