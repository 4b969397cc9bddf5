"""The watcher's nftables dataplane: incremental state, minimal diff, one
libnftables JSON transaction per sync, drift detection by reading back.

A pod event dirties only the sets it belongs to: only those are re-encoded,
and the diff carries only their changed elements.  Chains are recomputed
only when a policy (or node) changed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from backends import nft_diff
from backends import nft_json as nj
from policyc.compiler import Compiler
from policyc.errors import BackendError
from policyc.ir import Changes, SetKind
from policyc.lower import lower
from policyc.names import TABLE
from policyc.passes import optimise

log = logging.getLogger("policyc.watch")
BRIDGE_KINDS = (SetKind.IFACE_ADDR, SetKind.IFACE)
FAULT_ENV = "POLICYC_FAULT_APPLY"  # test hook: a file; while it exists, applies fail


@dataclass
class SyncResult:
    commands: int
    changed: bool


@dataclass
class Delta:
    cmds: list[dict[str, Any]] = field(default_factory=list)
    # (a programmed set's elements, element key, element JSON, added?)
    updates: list[tuple[dict[str, Any], str, Any, bool]] = field(default_factory=list)

    def apply(self) -> None:
        for elems, k, js, add in self.updates:
            if add:
                elems[k] = js
            else:
                elems.pop(k, None)


class NftDataplane:
    name = "nftables"

    def __init__(self, opt: bool = True) -> None:
        self.opt = opt
        self.programmed: nft_diff.State | None = None  # what the kernel holds
        self.skeleton: nft_diff.State | None = None  # chains and set headers
        self.replace_next = False  # after drift: replace whole, never adopt

    def desired(self, compiler: Compiler) -> nft_diff.State:
        """The full desired state; sets untouched since the last sync are reused."""
        ch = compiler.changes()
        return self._desired(compiler, set(ch.dirty), ch.rules)

    def _desired(self, compiler: Compiler, dirty: set[str], rules: bool) -> nft_diff.State:
        if self.skeleton is None or rules:
            graph = optimise(compiler.graph(elements=False), self.opt)
            self.skeleton = nft_diff.with_revision(nft_diff.state_of(lower(graph)))
            dirty = set(compiler.specs)  # the set list may have changed: re-encode all
        prev = self.programmed
        tables = []
        for i, skel in enumerate(self.skeleton.tables):
            table = nft_diff.TableState(skel.family, chains=skel.chains)
            for name, (header, _) in skel.sets.items():
                if prev is not None and name not in dirty and name in prev.tables[i].sets:
                    table.sets[name] = (header, prev.tables[i].sets[name][1])
                    continue
                table.sets[name] = (header, nft_diff.encode_elements(compiler.set_def(name)))
            tables.append(table)
        return nft_diff.State(tuple(tables))

    def element_delta(self, compiler: Compiler, changes: Changes) -> Delta | None:
        """A pure membership change (no rule or set-list change): commands for
        exactly the elements that came and went, and the updates to apply to
        ``programmed`` once they commit.  None if that does not apply."""
        if self.programmed is None or self.skeleton is None or changes.reset:
            return None
        delta = Delta()
        for t in self.programmed.tables:
            for name in sorted(changes.dirty & t.sets.keys()):
                elems = t.sets[name][1]
                sdef = compiler.set_def(name, elements=False)
                parts: dict[bool, list[Any]] = {False: [], True: []}
                for add, group in ((False, changes.removed), (True, changes.added)):
                    for e in group.get(name, ()):
                        js = nj.element(sdef, e)
                        k = nft_diff.key(js)
                        if (k in elems) != add:
                            parts[add].append(js)
                            delta.updates.append((elems, k, js, add))
                el = {"family": t.family, "table": TABLE, "name": name}
                if parts[False]:
                    delta.cmds.append({"delete": {"element": {**el, "elem": parts[False]}}})
                if parts[True]:
                    delta.cmds.append({"add": {"element": {**el, "elem": parts[True]}}})
        return delta

    def sync(self, compiler: Compiler) -> SyncResult:
        changes = compiler.changes()
        fast = None if changes.rules else self.element_delta(compiler, changes)
        if fast is not None:
            if fast.cmds:
                self._commit(fast.cmds)
                fast.apply()
            return SyncResult(len(fast.cmds), bool(fast.cmds))
        want = self._desired(compiler, set(changes.dirty), changes.rules)
        if self.programmed is None and not self.replace_next:
            # Start-up (or after drift/failure): read what the kernel holds.  If
            # its chains carry our revision, only set elements need converging.
            self.programmed = nft_diff.adopt(want)
            log.info(
                "start-up: kernel tables %s",
                "adopted; converging set elements"
                if self.programmed
                else "absent or different; replacing them in one transaction",
            )
        cmds = nft_diff.diff(self.programmed, want)
        if cmds:
            self._commit(cmds)
        self.programmed = want
        self.replace_next = False
        return SyncResult(len(cmds), bool(cmds))

    def _commit(self, cmds: list[dict[str, Any]]) -> None:
        """One transaction; on failure nothing changed and the next sync
        starts from what the kernel holds."""
        self._check_fault()
        try:
            nft_diff.apply_json(cmds)
        except BackendError:
            self.skeleton = None
            self.programmed = None
            raise

    def _check_fault(self) -> None:
        if os.environ.get(FAULT_ENV) and os.path.exists(os.environ[FAULT_ENV]):
            self.skeleton = None  # recompute next time: nothing was applied
            self.programmed = None
            raise BackendError(f"injected apply failure ({FAULT_ENV})")

    def drifted(self) -> bool:
        """Has anyone changed policyc's tables behind our back?  Compares the
        kernel's sets (every element) and chains (every rule, by position and
        comment) with what we programmed."""
        if self.programmed is None:
            return False
        return nft_diff.kernel_summary() != nft_diff.summary(self.programmed)

    def forget(self) -> None:
        """After drift: the next sync replaces the tables whole."""
        self.programmed = None
        self.skeleton = None
        self.replace_next = True

    def cleanup(self) -> None:
        cmds = [{"delete": {"table": {"family": f, "name": TABLE}}} for f in ("inet", "bridge")]
        for cmd in cmds:
            try:
                nft_diff.apply_json([{"add": {"table": cmd["delete"]["table"]}}, cmd])
            except BackendError:
                pass
        self.forget()

    def size(self) -> dict[str, int]:
        return self.programmed.size() if self.programmed else {}
