"""A ``policyc watch --log-drops`` agent on the standard 9-pod lab, with the
cluster in a directory source, for the drop-log kernel tests."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from backends.iptables.kernel import VARIANT_ENV
from policyc.evaluate import Evaluator
from policyc.load import parse_text
from policyc.parse import build_cluster
from tests.support.world import dump, world

from .agent_proc import AgentProc
from .netlab import Lab
from .pods import Pod

WAIT = 10.0  # seconds to wait for an effect (a deadline, never a figure)
Probe = tuple[int, str, str, str, int]  # (family, src pod key, dst pod key, proto, port)
Key = tuple[str, str, int, str]  # (src ip, dst ip, dst port, PROTO)


class DropLab:
    def __init__(self, lab: Lab, backend: str, tmp: Path, port: int, *extra: str) -> None:
        self.lab = lab
        self.src = tmp / "src"
        self.src.mkdir()
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.write()
        self.agent = AgentProc(
            lab.node.netns,
            "node-1",
            self.src,
            port,
            "--backend",
            backend,
            "--no-routes",
            "--cleanup",
            "--log-drops",
            *extra,
            env={VARIANT_ENV: "nft"},
        )

    # -- the cluster -------------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        return world(list(self.policies.values()))

    def write(self) -> None:
        tmp = self.src.parent / "world.yaml.tmp"
        tmp.write_text(dump(self.objects()))
        os.replace(tmp, self.src / "world.yaml")

    def put(self, policy: dict[str, Any], pod: str) -> None:
        """Put ``policy`` and wait until /pods shows ``pod`` enforced for it."""
        meta = policy["metadata"]
        gen0, _ = self.state(pod)
        self.policies[(meta.get("namespace", ""), meta["name"])] = policy  # "": cluster-scoped
        self.write()
        self.wait_enforced(pod, gen0)

    def remove(self, ns: str, name: str, pod: str) -> None:
        gen0, _ = self.state(pod)
        self.policies.pop((ns, name))
        self.write()
        self.wait_enforced(pod, gen0)

    def wait_enforced(self, pod: str, gen0: int) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            gen, ok = self.state(pod)
            if gen > gen0 and ok:
                return
            time.sleep(0.05)
        raise AssertionError(f"{pod}: not enforced after {WAIT}s\n{self.agent.logs()[-3000:]}")

    # -- the agent ---------------------------------------------------------
    def start(self) -> None:
        self.agent.start()

    def stop(self) -> int:
        return self.agent.stop(signal.SIGTERM)

    def state(self, pod: str) -> tuple[int, bool]:
        """(generation, enforced) of ``pod`` on /pods."""
        code, body = self.agent.get("/pods")
        assert code == 200, body
        st = json.loads(body).get(pod, {})
        return int(st.get("generation", 0)), bool(st.get("enforced"))

    def drops(self) -> list[dict[str, Any]]:
        code, body = self.agent.get("/drops")
        assert code == 200, body
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    # -- packets -----------------------------------------------------------
    def pod(self, key: str) -> Pod:
        return self.lab.pods[key]

    def case(self, p: Probe) -> tuple[Pod, str, str, int]:
        fam, src, dst, proto, port = p
        return (self.pod(src), self.pod(dst).addr(fam), proto, port)

    def key(self, p: Probe) -> Key:
        fam, src, dst, proto, port = p
        return (self.pod(src).addr(fam), self.pod(dst).addr(fam), port, proto.upper())

    def expected(self, probes: list[Probe]) -> dict[Probe, bool]:
        ev = Evaluator(build_cluster(parse_text(dump(self.objects()), "<droplab>")))
        return {p: ev.allowed(self.key(p)[0], self.key(p)[1], p[4], p[3]).allowed for p in probes}

    def probe(self, probes: list[Probe], timeout: float = 0.4) -> dict[Probe, bool]:
        """One attempt each: a TCP SYN once (the timeout is under TCP's 1 s
        retransmission), UDP once."""
        got = self.lab.probe([self.case(p) for p in probes], timeout)
        return {p: got[self.case(p)] for p in probes}

    def collect(self, probes: list[Probe], want: int) -> list[dict[str, Any]]:
        """Probe (checking the verdicts against the evaluator) and return the
        records for these probes, once ``want`` arrived (or WAIT passed) and
        a further half second showed no more."""
        before = len(self.drops())
        exp = self.expected(probes)
        got = self.probe(probes)
        assert got == exp, {p: (exp[p], got[p]) for p in probes if exp[p] != got[p]}
        keys = {self.key(p) for p in probes}
        deadline = time.monotonic() + WAIT
        while True:
            new = [r for r in self.drops()[before:] if rec_key(r) in keys]
            if len(new) >= want or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        return [r for r in self.drops()[before:] if rec_key(r) in keys]


def rec_key(rec: dict[str, Any]) -> Key:
    return (rec["src"]["ip"], rec["dst"]["ip"], rec["dst"]["port"], rec["proto"])
