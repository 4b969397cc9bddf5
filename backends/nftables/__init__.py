"""The nftables backend: the contract's verbs (``backends.contract``).

render(ruleset)    -> State         render.py (dialect.py: the one translation)
diff / patch       -> Transaction   diff.py (pure)
apply(tx)                           kernel.py (libnftables, one ``nft -f`` buffer)
read_kernel()      -> State | None  kernel.py + decode.py
write / files      -> nft -f text   printer.py (the one printer: text and JSON)
"""

from __future__ import annotations

from collections.abc import Mapping

from backends import contract
from backends.contract import Backend
from backends.nftables import diff as _diff
from backends.nftables import kernel, printer
from backends.nftables import render as _render
from backends.nftables.objects import State, Transaction
from policyc.chains import Ruleset
from policyc.errors import BackendError
from policyc.ir import Changes, SetDef
from policyc.names import TABLE


class NftablesBackend:
    name = "nftables"

    def render(self, ruleset: Ruleset) -> State:
        return _render.render(ruleset)

    def diff(self, programmed: State | None, desired: State) -> Transaction:
        return _diff.diff(programmed, desired)

    def patch(
        self, programmed: State, changes: Changes, sets: Mapping[str, SetDef]
    ) -> Transaction | None:
        return _diff.patch(programmed, changes, sets)

    def apply(self, tx: contract.Transaction[State]) -> None:
        if not isinstance(tx, Transaction):
            raise BackendError(f"nftables cannot apply a {type(tx).__name__}")
        kernel.run_text(printer.command_text(tx))

    def read_kernel(self) -> State | None:
        return kernel.read(TABLE)

    def write(self, state: State) -> str:
        """The ``nft -f`` script (``policyc compile``); the revision marker is
        the agent's and is left out."""
        return printer.script(state, skip=(_render.REV_CHAIN,))

    def files(self, state: State) -> dict[str, str]:
        return {"policyc.nft": self.write(state)}

    def remove(self) -> None:
        for family in kernel.FAMILIES:
            kernel.delete_table(family, TABLE)


BACKEND = NftablesBackend()
_checked: Backend[State] = BACKEND
