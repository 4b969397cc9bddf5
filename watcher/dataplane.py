"""The watcher's one dataplane, whatever the backend.

    builder.changes() --rules changed?--> graph -> passes -> lower -> backend.render
                      \\--elements only--> backend.patch(programmed, changes)
    -> backend.diff(programmed, desired) -> backend.apply(tx) -> programmed = tx.after

This module owns "rules changed": the builder reports it in its change value
and nothing writes back into the builder.  A pod event becomes a transaction
of set elements only (``patch``); a policy change renders the ruleset again
and the backend's pure ``diff`` keeps the transaction minimal.

On start-up, and after a failed apply, the programmed state is read from the
kernel (``read_kernel``): an agent that restarts converges what differs
instead of replacing tables that already enforce the right rules.  After
drift (someone else changed policyc's tables), the next sync replaces them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.contract import Backend, State, Transaction
from policyc.bulk import bulk
from policyc.chains import Ruleset
from policyc.compiler import Compiler
from policyc.lower import lower
from policyc.lower_log import LogConfig
from policyc.passes import optimise

log = logging.getLogger("policyc.watch")


@dataclass(frozen=True, slots=True)
class SyncResult:
    commands: int  # operations in the committed transaction
    changed: bool


class Dataplane:
    def __init__(
        self, backend: Backend[Any], opt: bool = True, log_group: int | None = None
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.opt = opt
        self.log_group = log_group  # --log-drops: NFLOG group of the drop rules
        self.programmed: State | None = None  # what the kernel holds, as of our last commit
        self.adopt = True  # next full sync starts from what the kernel holds
        # Run once after the first commit that succeeds (``make_dataplane``:
        # remove another backend's rules, as ``policyc apply`` does when
        # switching); retried after the next commit if it raises.
        self.after_first_commit: Callable[[], None] | None = None

    def ruleset(self, builder: Compiler) -> Ruleset:
        log = None if self.log_group is None else LogConfig(self.log_group)
        return lower(optimise(builder.graph(), self.opt), log)

    def transaction(self, builder: Compiler) -> Transaction[Any]:
        """The next transaction (pure but for reading the kernel at start-up):
        set elements only when no rule changed, else render and diff."""
        changes = builder.changes()
        if self.programmed is not None and not changes.rules:
            sets = {
                n: builder.set_def(n, elements=n in changes.reset)
                for n in sorted(changes.dirty)
                if n in builder.specs
            }
            tx = self.backend.patch(self.programmed, changes, sets)
            if tx is not None:
                return tx
        # A whole ruleset at L is millions of long-lived objects: no GC walks
        # while it is built, and frozen afterwards so that the collections
        # a pod event triggers do not walk it (a full one: 114 ms at L).
        with bulk(len(builder.pods)):
            desired = self.backend.render(self.ruleset(builder))
        programmed = self.programmed
        if programmed is None and self.adopt:
            programmed = self.backend.read_kernel()
            log.info(
                "start-up: kernel state %s",
                "read; converging what differs"
                if programmed is not None
                else "absent; programming it whole",
            )
        return self.backend.diff(programmed, desired)

    def sync(self, builder: Compiler) -> SyncResult:
        """Bring the kernel to the builder's graph in one transaction.

        Raises BackendError (the previous rules stay in force), or whatever
        else stopped the commit (an ``OSError`` when a tool cannot be started);
        either way the change journal is already taken, so the next sync
        starts again from what the kernel holds and renders everything."""
        try:
            tx = self.transaction(builder)
            if len(tx):
                self.backend.apply(tx)
        except Exception:  # not only BackendError: the journal is gone either way
            self.programmed = None
            self.adopt = True
            raise
        self.programmed = tx.after
        self.adopt = False
        if self.after_first_commit is not None:
            try:
                self.after_first_commit()
                self.after_first_commit = None
            except Exception as exc:  # its rules only drop more: retried next sync
                log.warning("after the first commit: %s", exc)
        return SyncResult(len(tx), bool(len(tx)))

    def drifted(self) -> bool:
        """Has anyone changed policyc's tables behind our back?  Every element
        and every rule body is compared with what we programmed."""
        if self.programmed is None:
            return False
        return self.backend.read_kernel() != self.programmed

    def forget(self) -> None:
        """After drift: the next sync replaces the tables whole."""
        self.programmed = None
        self.adopt = False

    def cleanup(self) -> None:
        self.backend.remove()
        self.forget()

    def size(self) -> dict[str, int]:
        return self.programmed.size() if self.programmed is not None else {}
