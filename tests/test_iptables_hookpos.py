"""The hook jump's position is state: a jump some other rule precedes is not
the rendered hook (drift), and the diff deletes and re-inserts it first."""

from __future__ import annotations

from backends.iptables.diff import TableWrite, diff
from backends.iptables.restore import read_tables, table_input
from backends.iptables.state import Chain, HookJump, IptablesState, Rule, Table, Tool

CHAIN = Chain("POLICYC-FORWARD", "-", (Rule((), ("-j", "DROP")),))


def saved(*forward: str) -> str:
    """An ``iptables-save`` of filter with these FORWARD rules, in order."""
    lines = ["*filter", ":FORWARD ACCEPT [0:0]", ":POLICYC-FORWARD - [0:0]"]
    lines += [f"-A FORWARD {r}" for r in forward]
    lines += ["-A POLICYC-FORWARD -j DROP", "COMMIT"]
    return "\n".join(lines) + "\n"


def state(text: str) -> IptablesState:
    return IptablesState((), tuple(read_tables(Tool.IPTABLES, text)))


DESIRED = IptablesState(
    (), (Table(Tool.IPTABLES, "filter", (CHAIN,), (HookJump("FORWARD", "POLICYC-FORWARD"),)),)
)
FOREIGN = "-s 10.244.0.0/16 -j ACCEPT"


def only_write(a: IptablesState, b: IptablesState) -> TableWrite:
    (step,) = diff(a, b).steps
    assert isinstance(step, TableWrite)
    return step


def test_first_jump_is_the_rendered_hook() -> None:
    kernel = state(saved("-j POLICYC-FORWARD", FOREIGN))
    assert kernel == DESIRED
    assert diff(kernel, DESIRED).steps == ()


def test_jump_below_a_foreign_rule_is_drift_and_moved_first() -> None:
    kernel = state(saved(FOREIGN, "-j POLICYC-FORWARD"))
    (table,) = kernel.tables
    assert table.hooks == (HookJump("FORWARD", "POLICYC-FORWARD", first=False),)
    assert kernel != DESIRED
    step = only_write(kernel, DESIRED)
    assert step.chains == () and step.remove == ()  # the chain itself is unchanged
    text = table_input([step])
    delete, insert = "-D FORWARD -j POLICYC-FORWARD", "-I FORWARD 1 -j POLICYC-FORWARD"
    assert text.index(delete) < text.index(insert)  # one COMMIT, delete then insert
    assert text.count("COMMIT") == 1 and "10.244.0.0" not in text


def test_a_duplicate_jump_is_drift_and_every_copy_is_replaced() -> None:
    """``-D`` removes the first match, so a later duplicate cannot be deleted
    alone: both go and one is inserted first."""
    kernel = state(saved("-j POLICYC-FORWARD", FOREIGN, "-j POLICYC-FORWARD"))
    assert kernel != DESIRED
    text = table_input([only_write(kernel, DESIRED)])
    assert text.count("-D FORWARD -j POLICYC-FORWARD") == 2
    assert text.count("-I FORWARD 1 -j POLICYC-FORWARD") == 1


def test_position_is_per_builtin_chain_and_table() -> None:
    text = saved(FOREIGN).replace("COMMIT", "COMMIT\n*raw\n:PREROUTING ACCEPT [0:0]", 1)
    text += "-A PREROUTING -j POLICYC-ANTISPOOF\nCOMMIT\n"
    hooks = {t.name: t.hooks for t in state(text).tables}
    assert hooks == {"filter": (), "raw": (HookJump("PREROUTING", "POLICYC-ANTISPOOF"),)}


def test_rollback_to_a_snapshot_with_the_jump_below_still_inserts_it_first() -> None:
    """Undoing to a snapshot never re-creates the bypass: the jump goes back
    at rule 1 (the policy the snapshot held stays in force)."""
    before = state(saved(FOREIGN, "-j POLICYC-FORWARD"))
    text = table_input([only_write(DESIRED, before)])
    assert "-I FORWARD 1 -j POLICYC-FORWARD" in text
