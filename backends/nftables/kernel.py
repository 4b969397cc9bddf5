"""The one libnftables wrapper: run a transaction, list a table, check a script.

libnftables (the ``nftables`` Python bindings over ``libnftables.so.1``) runs
a whole JSON command list as one batch: either all of it commits or none of
it does.  ``nft -c`` (check only) goes through the binary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from backends.nftables import decode
from backends.nftables.objects import State, Table
from policyc.errors import BackendError

FAMILIES = ("inet", "bridge")


def _ctx() -> Any:
    try:
        import nftables  # type: ignore[import-not-found]
    except ImportError as exc:
        raise BackendError("the nftables Python bindings are not installed") from exc
    nft = nftables.Nftables()
    nft.set_json_output(True)
    return nft


def run(cmds: list[dict[str, Any]]) -> None:
    """Commit ``cmds`` in one libnftables transaction (all or nothing)."""
    if not cmds:
        return
    rc, _out, err = _ctx().json_cmd({"nftables": cmds})
    if rc != 0:
        raise BackendError(f"nft rejected the transaction (nothing was changed): {_distinct(err)}")


def run_text(script: str) -> None:
    """Commit an ``nft -f`` buffer in one libnftables transaction (all or
    nothing).  Faster than ``run`` on large transactions: libnftables parses
    its own syntax with a bison parser, its JSON through jansson objects."""
    if not script.strip():
        return
    rc, _out, err = _ctx().cmd(script)
    if rc != 0:
        raise BackendError(f"nft rejected the transaction (nothing was changed): {_distinct(err)}")


def _distinct(err: str) -> str:
    """libnftables repeats one error per command of the batch (a table the
    kernel refuses: one line for each of hundreds of commands); each distinct
    line once, with how many times it came."""
    counts: dict[str, int] = {}
    for line in err.splitlines():
        if line.strip():
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    return "\n".join(f"{k} ({n} times)" if n > 1 else k for k, n in counts.items())


def check(script: str) -> None:
    """``nft -c -f -``: would the kernel accept this script?  Changes nothing."""
    binary = shutil.which("nft")
    if binary is None:
        raise BackendError("the nft binary is not installed")
    proc = subprocess.run(
        [binary, "-c", "-f", "-"], input=script, text=True, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise BackendError(f"nft rejected the ruleset:\n{proc.stderr.strip()}")


def list_table(family: str, name: str) -> list[dict[str, Any]] | None:
    """``nft -j list table FAMILY NAME``'s items, or None if there is no such table."""
    rc, text, _err = _ctx().cmd(f"list table {family} {name}")
    if rc != 0:
        return None
    try:
        return list(json.loads(text)["nftables"])
    except (ValueError, KeyError, TypeError) as exc:
        # Seen: libnftables 1.0.6 prints garbage for the flags of a table
        # another process owns ("flags owner"); the agent retries on BackendError.
        raise BackendError(f"cannot decode 'nft -j list table {family} {name}': {exc}") from exc


def read(name: str) -> State | None:
    """policyc's tables as the kernel holds them; None if either is missing."""
    tables: list[Table] = []
    for family in FAMILIES:
        items = list_table(family, name)
        if items is None:
            return None
        tables.append(decode.table(items, family, name))
    return State(tuple(tables), read=True)


def delete_table(family: str, name: str) -> None:
    """Delete a table if it exists (create-then-delete in one transaction)."""
    table = {"family": family, "name": name}
    run([{"add": {"table": table}}, {"delete": {"table": table}}])
