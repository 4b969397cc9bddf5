"""Counts for the run: inputs per class and backend, exit codes, findings.

Printed in the pytest terminal summary (``policyc hostile figures: ...``) and
written as JSON to ``<pytest basetemp>/hostile-figures.json``; the bench
prints the same JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Figures:
    """Mutable tallies keyed ``class/backend``."""

    inputs: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    seed: int | None = None

    def count(self, cls: str, backend: str, code: int, kinds: Iterable[str]) -> None:
        key = f"{cls}/{backend}"
        self.inputs[key] += 1
        self.exits[f"{key}/exit{code}"] += 1
        for kind in set(kinds):
            self.findings[f"{key}/{kind}"] += 1

    def as_json(self) -> str:
        return json.dumps(
            {
                "seed": self.seed,
                "inputs": dict(sorted(self.inputs.items())),
                "exits": dict(sorted(self.exits.items())),
                "findings": dict(sorted(self.findings.items())),
            },
            indent=2,
        )

    def summary(self) -> str:
        """One line: total, per class, exit counts, findings."""
        total = sum(self.inputs.values())
        per = ", ".join(f"{k}={v}" for k, v in sorted(self.inputs.items()))
        exits = ", ".join(f"{k}={v}" for k, v in sorted(self.exits.items()))
        finds = ", ".join(f"{k}={v}" for k, v in sorted(self.findings.items())) or "none"
        return f"seed={self.seed} runs={total}; {per}; exits: {exits}; findings: {finds}"


FIGURES = Figures()
