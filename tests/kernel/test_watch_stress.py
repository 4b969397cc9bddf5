"""Namespace label flips under CPU load (issue 13 §6), on both backends.

The report: under a load average of about 6, one ``policyc watch`` run left a
node denying every expected-allowed cell after namespace ``y`` gained a
label.  Here the real agent runs on the 9-pod lab with a directory source
and policies that read a namespace label (``stress``: matchLabels, and
NotIn), while ``2 x nproc`` busy-loop processes keep the CPUs saturated.
Each round writes a burst of one to four changes without waiting (mostly
``y``'s label flipped, sometimes ``x``'s or ``z``'s, interleaved with pod
label changes), so changes land in one batch window, across windows, and
while a sync runs.  Namespace files are written atomically (rename) or in
place (truncate and write, as an editor or ``kubectl``-less script does),
so the directory source also reads files while they are half-written (the
values ``on``/``no`` keep a rewrite the same size: only the timestamps tell
two versions apart).
After every burst the agent must converge: probes of every ordered pod pair
(TCP 80 and 81, IPv4 and IPv6 in turn) must equal the evaluator's verdicts
for the final objects within a deadline (probed again until then; no timing
is asserted).

Size: ``POLICYC_STRESS_ROUNDS`` bursts per backend (default 20: about 70 s
for both backends on two cores); e.g. ``POLICYC_STRESS_ROUNDS=300`` for a
long run.  ``POLICYC_STRESS_SEED`` picks the sequence (printed on failure).
The iptables backend runs with the first installed variant (nft, legacy).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.iptables.kernel import VARIANT_ENV
from tests.support.figures import count
from tests.support.scenarios import expr, labels, nss, pods, pol, port
from tests.support.world import dump, world

from .agent_proc import AgentProc
from .netlab import Lab
from .pods import matrix_diff
from .world import expected_matrix

ROUNDS = int(os.environ.get("POLICYC_STRESS_ROUNDS", "20"))
SEED = int(os.environ.get("POLICYC_STRESS_SEED", "20261130"))
PORT = 9783
PORTS = (("tcp", 80), ("tcp", 81))
DEADLINE = 30.0  # seconds for one burst to converge, busy CPUs included
POLICIES = [
    pol("x", "deny", types=["Ingress"]),
    pol("x", "from-on", {}, ingress=[{"from": [nss(stress="on")], "ports": [port(80, "TCP")]}]),
    pol(
        "z",
        "from-on-b",
        labels(pod="a"),
        ingress=[{"from": [{**nss(stress="on"), **pods(pod="b")}]}],
    ),
    pol(
        "z",
        "from-not-on",
        labels(pod="c"),
        ingress=[{"from": [{"namespaceSelector": expr("stress", "NotIn", "on")}]}],
    ),
    pol("y", "egress-on", labels(pod="b"), types=["Egress"], egress=[{"to": [nss(stress="on")]}]),
]
Obj = dict[str, Any]


def _iptables_variant() -> str | None:
    for variant in ("nft", "legacy"):
        if all(shutil.which(t) for t in ("ipset", "ebtables-nft", f"iptables-{variant}-save")):
            return variant
    return None


def _reset(lab: Lab, variant: str | None) -> None:
    lab.flush_firewall()
    if variant == "legacy":
        for fam in ("iptables", "ip6tables"):
            for table in ("raw", "filter"):
                for op in ("-F", "-X"):
                    lab.node_exec([f"{fam}-legacy", "-w", "-t", table, op], check=False)


class Burner:
    """``2 x nproc`` busy loops, killed (by their own pids) on exit."""

    def __enter__(self) -> Burner:
        n = 2 * (os.cpu_count() or 1)
        self.procs: list[subprocess.Popen[bytes]] = []
        for _ in range(n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


class Folder:
    """The desired state: one file per namespace, the rest in ``world.yaml``."""

    def __init__(self, src: Path, rnd: random.Random) -> None:
        self.src, self.rnd = src, rnd
        self.ns_on = {"x": False, "y": False, "z": False}
        self.pod_labels: dict[tuple[str, str, str], dict[str, str]] = {}

    def objects(self) -> list[Obj]:
        relabel = dict(self.pod_labels)
        for ns, on in self.ns_on.items():
            relabel[("Namespace", "", ns)] = {"ns": ns, "stress": "on" if on else "no"}
        return world(POLICIES, relabel)

    def _write(self, name: str, text: str, in_place: bool) -> None:
        path = self.src / name
        if in_place:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            return
        tmp = self.src / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)

    def write_all(self) -> None:
        objs = self.objects()
        rest = [o for o in objs if o["kind"] != "Namespace"]
        self._write("world.yaml", dump(rest), in_place=False)
        for o in objs:
            if o["kind"] == "Namespace":
                self._write(f"ns-{o['metadata']['name']}.yaml", dump([o]), in_place=False)

    def flip(self, ns: str) -> None:
        self.ns_on[ns] = not self.ns_on[ns]
        obj = next(
            o for o in self.objects() if o["kind"] == "Namespace" and o["metadata"]["name"] == ns
        )
        self._write(f"ns-{ns}.yaml", dump([obj]), in_place=self.rnd.random() < 0.5)

    def relabel_pod(self, ns: str, name: str, value: str) -> None:
        self.pod_labels[("Pod", ns, name)] = {"pod": value}
        rest = [o for o in self.objects() if o["kind"] != "Namespace"]
        self._write("world.yaml", dump(rest), in_place=False)

    def burst(self) -> list[str]:
        """One to four changes, written back to back; what they were."""
        done = []
        for _ in range(self.rnd.randint(1, 4)):
            r = self.rnd.random()
            if r < 0.6:
                self.flip("y")
                done.append(f"flip y -> {self.ns_on['y']}")
            elif r < 0.75:
                ns = self.rnd.choice("xz")
                self.flip(ns)
                done.append(f"flip {ns} -> {self.ns_on[ns]}")
            else:
                ns, name, value = (self.rnd.choice(s) for s in ("xyz", "abc", "abc"))
                self.relabel_pod(ns, name, value)
                done.append(f"pod {ns}/{name} -> pod={value}")
        return done


def _converge(lab: Lab, objs: list[Obj], family: int) -> list[str]:
    """Probe until the matrix equals the evaluator's or the deadline passes."""
    expected = expected_matrix(lab, objs, family, PORTS)
    deadline = time.monotonic() + DEADLINE
    while True:
        wrong = matrix_diff(expected, lab.matrix(ports=PORTS, family=family))
        if not wrong or time.monotonic() > deadline:
            count("watch_stress_cells", len(expected))
            return wrong
        time.sleep(0.2)


@pytest.fixture(params=["nftables", "iptables"])
def backend(request: pytest.FixtureRequest, lab: Lab) -> Iterator[tuple[list[str], dict[str, str]]]:
    name = str(request.param)
    variant = None
    if name == "iptables":
        variant = _iptables_variant()
        if variant is None:
            pytest.skip("no iptables variant with ipset and ebtables-nft is installed")
    _reset(lab, variant)
    try:
        if variant is None:
            yield [], {}
        else:
            yield ["--backend", "iptables"], {VARIANT_ENV: variant}
    finally:
        _reset(lab, variant)


def test_namespace_label_flips_under_load(
    lab: Lab, backend: tuple[list[str], dict[str, str]], tmp_path: Path
) -> None:
    extra, env = backend
    rnd = random.Random(SEED)
    src = tmp_path / "src"
    src.mkdir()
    folder = Folder(src, rnd)
    folder.write_all()
    agent = AgentProc(lab.node.netns, "node-1", src, PORT, *extra, "--no-routes", env=env)
    log: list[str] = []
    with Burner():
        agent.start()
        try:
            wrong = _converge(lab, folder.objects(), 4)
            assert not wrong, "start:\n" + "\n".join(wrong[:30])
            for i in range(ROUNDS):
                log.append(f"round {i}: " + ", ".join(folder.burst()))
                family = 4 if i % 2 == 0 else 6
                wrong = _converge(lab, folder.objects(), family)
                assert not wrong, (
                    f"seed {SEED}, IPv{family}, not converged after {DEADLINE}s:\n"
                    + "\n".join(log[-5:])
                    + "\n"
                    + "\n".join(wrong[:30])
                    + "\n"
                    + agent.logs()[-4000:]
                )
            count("watch_stress_flips", sum(r.count("flip") for r in log))
            count("watch_stress_rounds", ROUNDS)
        finally:
            rc = agent.stop(signal.SIGTERM)
    assert rc == 0, agent.logs()[-3000:]
