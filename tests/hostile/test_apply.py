"""``policyc apply`` into fresh namespaces: foreign state stays untouched.

Each test makes its own namespace (``netns.fresh_netns``, deleted by name in
a ``finally``), puts a foreign nft table, a foreign ipset and a foreign
iptables chain in it, then applies:
- a valid hostile cluster: exit 0, the foreign objects are byte-identical;
- bad input (a repro that must be refused, and seeded mutations): on any
  non-zero exit the whole kernel state is exactly as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.clusters import cluster
from tests.hostile.drive import BACKENDS
from tests.hostile.inputs import HostileInput
from tests.hostile.known import is_known
from tests.hostile.mutate import mutation
from tests.hostile.netns import add_foreign, foreign_state, fresh_netns, snapshot
from tests.hostile.oracles import check_process
from tests.hostile.repros import REPROS
from tests.hostile.runner import apply_input
from tests.hostile.seed import SEED
from tests.kernel.kernelcheck import require_kernel

APPLY_INDEX = 10_000  # distinct from the compile-only inputs of the same seed


def _apply(inp: HostileInput, backend: str, tmp_path: Path) -> None:
    require_kernel()
    with fresh_netns("apply") as ns:
        add_foreign(ns)
        before, foreign = snapshot(ns), foreign_state(ns)
        outcome = apply_input(inp, backend, tmp_path / "run", ns)
        findings = [str(f) for f in check_process(inp, outcome) if not is_known(f.kind)]
        assert not findings, f"POLICYC_SEED={SEED} {inp.ident}: {findings}"
        if outcome.code == 0:
            assert foreign_state(ns) == foreign, f"{inp.ident}: foreign state changed"
        else:
            assert snapshot(ns) == before, f"{inp.ident}: exit {outcome.code} changed the kernel"


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_valid_cluster_keeps_foreign(backend: str, tmp_path: Path) -> None:
    inp = cluster(SEED, APPLY_INDEX)
    _apply(inp, backend, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ident", ["pol-garbage", "exists-16-long-keys-flush"])
def test_apply_repro(ident: str, backend: str, tmp_path: Path) -> None:
    _apply(REPROS[ident], backend, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index", range(APPLY_INDEX, APPLY_INDEX + 2))
def test_apply_mutation_leaves_kernel(index: int, backend: str, tmp_path: Path) -> None:
    _apply(mutation(SEED, index), backend, tmp_path)
