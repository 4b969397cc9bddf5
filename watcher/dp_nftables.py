"""The watcher's nftables dataplane: incremental state, minimal diff, one
libnftables JSON transaction per sync, drift detection by listing.

A pod event dirties only the sets it belongs to: only those are re-encoded,
and the diff carries only their changed elements.  Chains are recomputed
only when a policy (or node) changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from backends import nft_diff
from backends import nft_json as nj
from policyc.compiler import Compiler
from policyc.errors import BackendError
from policyc.ir import SetKind
from policyc.lower import lower
from policyc.names import TABLE
from policyc.passes import optimise

BRIDGE_KINDS = (SetKind.IFACE_ADDR, SetKind.IFACE)
FAULT_ENV = "POLICYC_FAULT_APPLY"  # test hook: a file; while it exists, applies fail


@dataclass
class SyncResult:
    commands: int
    changed: bool


class NftDataplane:
    name = "nftables"

    def __init__(self, opt: bool = True) -> None:
        self.opt = opt
        self.programmed: nft_diff.State | None = None  # what the kernel holds
        self.skeleton: nft_diff.State | None = None  # chains and set headers
        self.fingerprint: str | None = None

    def desired(self, compiler: Compiler) -> nft_diff.State:
        dirty = compiler.take_dirty()
        if self.skeleton is None or compiler.rules_changed:
            graph = optimise(compiler.graph(elements=False), self.opt)
            self.skeleton = nft_diff.state_of(lower(graph))
            compiler.rules_changed = False
            dirty = set(compiler.specs)  # the set list may have changed: re-encode all
        prev = self.programmed
        tables = []
        for i, skel in enumerate(self.skeleton.tables):
            table = nft_diff.TableState(skel.family, chains=skel.chains)
            for name, (header, _) in skel.sets.items():
                if prev is not None and name not in dirty and name in prev.tables[i].sets:
                    table.sets[name] = (header, prev.tables[i].sets[name][1])
                    continue
                sdef = compiler.set_def(name)
                elems = {}
                for e in sdef.elements:
                    js = nj.element(sdef, e)
                    elems[nft_diff._key(js)] = js
                table.sets[name] = (header, elems)
            tables.append(table)
        return nft_diff.State(tuple(tables))

    def sync(self, compiler: Compiler) -> SyncResult:
        want = self.desired(compiler)
        cmds = nft_diff.diff(self.programmed, want)
        if not cmds:
            return SyncResult(0, False)
        if os.environ.get(FAULT_ENV) and os.path.exists(os.environ[FAULT_ENV]):
            self.skeleton = None  # recompute next time: nothing was applied
            raise BackendError(f"injected apply failure ({FAULT_ENV})")
        try:
            nft_diff.apply_json(cmds)
        except BackendError:
            self.skeleton = None
            raise
        self.programmed = want
        self.fingerprint = nft_diff.listing()
        return SyncResult(len(cmds), True)

    def drifted(self) -> bool:
        """Has anyone changed policyc's tables behind our back?"""
        return self.fingerprint is not None and nft_diff.listing() != self.fingerprint

    def forget(self) -> None:
        """The next sync replaces the tables whole (start-up, drift, failure)."""
        self.programmed = None
        self.skeleton = None

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
