"""One step of the suite: compile an input with one backend, judge it, count it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.hostile.figures import FIGURES
from tests.hostile.inputs import HostileInput
from tests.hostile.known import is_known
from tests.hostile.oracles import Finding, check_compile
from tests.hostile.runner import DEFAULT, Bounds, Outcome, compile_input

BACKENDS = ("nftables", "iptables")


@dataclass(frozen=True, slots=True)
class Verdict:
    """An input's outcome on one backend and every oracle it broke."""

    inp: HostileInput
    backend: str
    outcome: Outcome
    findings: tuple[Finding, ...]

    def unknown(self) -> list[Finding]:
        """Findings not covered by ``known.KNOWN_FAILING``; ``kernel:*`` load
        failures that a known finding of the same run explains are its
        consequences (see ``known``)."""
        has_known = any(is_known(f.kind) for f in self.findings)
        return [
            f
            for f in self.findings
            if not is_known(f.kind) and not (has_known and f.kind.startswith("kernel:"))
        ]

    def report(self) -> str:
        head = f"{self.inp.cls}/{self.inp.ident} [{self.backend}] exit {self.outcome.code}"
        return "\n".join([head, *(f"  {f}" for f in self.findings)])


def judge(
    inp: HostileInput, backend: str, workdir: Path, netns: str, bounds: Bounds = DEFAULT
) -> Verdict:
    """Compile ``inp`` in ``workdir`` (must not exist yet), apply every oracle
    (kernel checks inside ``netns``), and count the result in ``FIGURES``."""
    outcome = compile_input(inp, backend, workdir, bounds)
    findings = tuple(check_compile(inp, backend, outcome, workdir, netns))
    FIGURES.count(inp.cls, backend, outcome.code, [f.kind for f in findings])
    return Verdict(inp, backend, outcome, findings)
