"""The iptables backend's kernel I/O: run the tools, read policyc's state,
apply a transaction all or nothing, remove everything of policyc's.

Neither ``ipset restore`` nor ``iptables-restore`` is one transaction (each
table's COMMIT is its own; IPv4, IPv6 and ebtables are separate programs),
so atomicity is built from a snapshot: a transaction that touches tables
first reads the kernel (``read_kernel``); if any step fails, the diff from
what the kernel then holds back to the snapshot is applied, and the previous
rules stay in force.  A set-only transaction is undone by its inverse diff,
``diff(tx.after, tx.before)``.  A pod event (``patch``: members, plus the
anti-spoofing chain when a local port comes or goes) is ``trusted``: its
``before`` is the watcher's programmed state, which is what the kernel holds
(drift is checked apart), so it is the snapshot and nothing is read first;
after a failure the kernel is read and converged back to it.

``POLICYC_IPTABLES_VARIANT`` (nft | legacy; unset: the system default)
chooses ``iptables-nft`` or ``iptables-legacy``; ebtables is always the nft
variant (``backends.iptables.ebtables``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from backends.iptables import ebtables
from backends.iptables.diff import Step, TableWrite, Transaction, diff
from backends.iptables.restore import checked, read_ipsets, read_tables, set_lines, table_input
from backends.iptables.state import EMPTY, OLD_PREFIX, TMP_PREFIX, IptablesState, Tool
from policyc.errors import BackendError

VARIANT_ENV = "POLICYC_IPTABLES_VARIANT"
WAIT = "60"  # seconds to wait for the xtables lock


@dataclass(frozen=True, slots=True)
class Kernel:
    variant: str | None = None  # "nft" | "legacy" | None (the system default)

    @classmethod
    def from_env(cls) -> Kernel:
        variant = os.environ.get(VARIANT_ENV) or None
        if variant not in (None, "nft", "legacy"):
            raise BackendError(f"{VARIANT_ENV} must be nft or legacy, not {variant!r}")
        return cls(variant)

    # -- processes ---------------------------------------------------------

    def tool(self, tool: Tool, suffix: str = "") -> str:
        if tool is Tool.EBTABLES:
            return ebtables.tool(suffix)
        name = tool.value + (f"-{self.variant}" if self.variant else "") + suffix
        path = shutil.which(name)
        if path is None:
            raise BackendError(f"{name} is not installed")
        return path

    def ipset_bin(self) -> str:
        path = shutil.which("ipset")
        if path is None:
            raise BackendError("ipset is not installed")
        return path

    def run(self, argv: Sequence[str], text: str | None = None) -> str:
        proc = subprocess.run(list(argv), input=text, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BackendError(f"{os.path.basename(argv[0])} failed: {proc.stderr.strip()}")
        return proc.stdout

    # -- reading -----------------------------------------------------------

    def save(self, tool: Tool) -> str:
        if tool is Tool.EBTABLES:
            return self.run([self.tool(tool, "-save"), "-t", ebtables.TABLE])
        return self.run([self.tool(tool, "-save")])

    def read_kernel(self) -> IptablesState | None:
        """policyc's sets, chains and hooks as the kernel holds them; None if
        there are none."""
        sets = read_ipsets(self.run([self.ipset_bin(), "save"]))
        tables = [t for tool in Tool for t in read_tables(tool, self.save(tool))]
        if not sets and not tables:
            return None
        return IptablesState(tuple(sets), tuple(tables))

    # -- writing -----------------------------------------------------------

    def run_steps(self, steps: Sequence[Step]) -> None:
        """Consecutive set steps as one ``ipset restore -exist``, consecutive
        table writes of one tool as one ``*-restore --noflush``."""
        i = 0
        while i < len(steps):
            j = i + 1
            first = steps[i]
            if isinstance(first, TableWrite):
                while j < len(steps) and _same_tool(steps[j], first.tool):
                    j += 1
                writes = [s for s in steps[i:j] if isinstance(s, TableWrite)]
                self.restore(first.tool, table_input(writes))
            else:
                while j < len(steps) and not isinstance(steps[j], TableWrite):
                    j += 1
                lines = [ln for s in steps[i:j] for ln in set_lines(s)]
                self.run([self.ipset_bin(), "restore", "-exist"], checked(lines))
            i = j

    def restore(self, tool: Tool, text: str) -> None:
        if tool is Tool.EBTABLES:
            self.run([self.tool(tool, "-restore"), "--noflush"], text)
        else:
            self.run([self.tool(tool, "-restore"), "-w", WAIT, "--noflush"], text)

    def drop_staging(self) -> None:
        """Staging copies a crashed apply left behind."""
        names = self.run([self.ipset_bin(), "list", "-n"]).split()
        stale = [f"destroy {n}" for n in names if n.startswith((TMP_PREFIX, OLD_PREFIX))]
        if stale:
            self.run([self.ipset_bin(), "restore", "-exist"], checked(stale))

    def apply(self, tx: Transaction) -> None:
        """Commit ``tx``; on failure restore what the kernel held before."""
        tables = tx.before is None or any(isinstance(s, TableWrite) for s in tx.steps)
        self.drop_staging()
        # A pod event's ``before`` is the kernel's (``trusted``): no read-back.
        before = (self.read_kernel() or EMPTY) if tables and not tx.trusted else tx.before
        assert before is not None
        work = tx if tx.before is not None else diff(before, tx.after)
        try:
            self.run_steps(work.steps)
        except BackendError as exc:
            try:
                now = (self.read_kernel() or EMPTY) if tables else tx.after
                self.drop_staging()
                self.run_steps(diff(now, before).steps)
            except BackendError as again:
                raise BackendError(f"{exc}\nrollback failed too: {again}") from exc
            raise BackendError(
                f"{exc}\nrolled back: the previous rules are still in effect"
            ) from exc

    def remove(self) -> None:
        """Delete policyc's hooks, chains and sets; nothing else."""
        self.drop_staging()
        state = self.read_kernel()
        if state is not None:
            self.run_steps(diff(state, EMPTY).steps)


def _same_tool(step: Step, tool: Tool) -> bool:
    return isinstance(step, TableWrite) and step.tool is tool
