"""The iptables + ipset + ebtables backend (``--backend iptables``).

    render(ruleset)            -> IptablesState   backends.iptables.render
    diff(programmed, desired)  -> Transaction     backends.iptables.diff (pure)
    patch(programmed, changes, sets)              element-only pod events
    apply(tx), read_kernel(), remove()            backends.iptables.kernel
    write(state), files(state)                    backends.iptables.restore

``BACKEND`` keeps ``backends.contract.Backend`` (mypy checks it below).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from backends.contract import Transaction as ContractTransaction
from backends.iptables import diff as _diff
from backends.iptables import kernel, restore
from backends.iptables import render as _render
from backends.iptables.diff import Transaction
from backends.iptables.state import IptablesState
from policyc.chains import Ruleset
from policyc.errors import BackendError
from policyc.ir import Changes, SetDef


class IptablesBackend:
    name = "iptables"

    def render(self, ruleset: Ruleset) -> IptablesState:
        return _render.render(ruleset)

    def diff(self, programmed: IptablesState | None, desired: IptablesState) -> Transaction:
        return _diff.diff(programmed, desired)

    def patch(
        self, programmed: IptablesState, changes: Changes, sets: Mapping[str, SetDef]
    ) -> Transaction | None:
        return _diff.patch(programmed, changes, sets)

    def apply(self, tx: ContractTransaction[IptablesState]) -> None:
        if not isinstance(tx, Transaction):
            raise BackendError(f"not an iptables transaction: {type(tx).__name__}")
        kernel.Kernel.from_env().apply(tx)

    def read_kernel(self) -> IptablesState | None:
        return kernel.Kernel.from_env().read_kernel()

    def write(self, state: IptablesState) -> str:
        return restore.write(state)

    def files(self, state: IptablesState) -> dict[str, str]:
        return {restore.FILES[k]: v for k, v in restore.files(state).items()}

    def remove(self) -> None:
        kernel.Kernel.from_env().remove()


BACKEND = IptablesBackend()

if TYPE_CHECKING:
    from backends.contract import Backend

    _checked: Backend[IptablesState] = BACKEND
