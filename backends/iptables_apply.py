"""``apply`` for the iptables backend: ipset restore, then iptables-restore
``--noflush`` of policyc's own chains, with a rollback at every step.

Neither ``ipset restore`` nor ``iptables-restore`` is one transaction (each
table's COMMIT is its own, and IPv4 and IPv6 are separate programs), so
atomicity is built from a snapshot of the previous state:

1. snapshot: ``iptables-save`` / ``ip6tables-save`` (policyc's chains and hooks)
   and ``ipset list -t`` (policyc's sets);
2. ipset, stage: new sets are created and filled (nothing refers to them yet),
   existing ones get a filled staging copy ``policyc-t-*``;
3. ipset, switch: each staging copy is swapped with its live set (a set of
   another type is renamed away to ``policyc-o-*`` and the copy renamed in);
4. iptables-restore -w --noflush, then ip6tables-restore: declaring
   ``:POLICYC-X - [0:0]`` flushes only that chain; missing hook jumps
   (checked with ``-C``) are inserted in the same COMMIT; then
   ``ebtables-nft-restore --noflush`` of the ARP / non-IP anti-spoofing chain
   (one nf_tables transaction, with its hook jump if ebtables-save lacks it);
5. on success: staging copies, chains and sets no longer referenced are removed.

A failure in 2-4 undoes 3, restores the snapshot of policyc's chains, and
removes what 2 created: the previous rules stay in effect.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from backends import ebtables
from backends.ipset import OLD_PREFIX, PREFIX, TMP_PREFIX, IpSet, old_name, parse_restore, tmp_name
from policyc.errors import BackendError

VARIANT_ENV = "POLICYC_IPTABLES_VARIANT"  # "nft", "legacy" or unset (the system default)
WAIT = "60"  # seconds to wait for the xtables lock
CHAIN_PREFIX = "POLICYC-"
FAMILIES = ("iptables", "ip6tables")
HOOK_RE = re.compile(r"^# hook .*: -I (\S+) 1 -j (\S+)$")


def _log(msg: str) -> None:
    print(f"policyc: {msg}", file=sys.stderr)


@dataclass
class TableState:
    """policyc's part of one table: its chains, their rules, and hook jumps."""

    chains: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    hooks: list[tuple[str, str]] = field(default_factory=list)  # (builtin, "-j X" rule spec)


def parse_tables(text: str) -> dict[str, TableState]:
    """policyc's chains from iptables-save output or from our restore input."""
    out: dict[str, TableState] = {}
    cur: TableState | None = None
    for line in text.splitlines():
        hook = HOOK_RE.match(line)
        if line.startswith("*"):
            cur = out.setdefault(line[1:].strip(), TableState())
        elif cur is None:
            continue
        elif hook:
            cur.hooks.append((hook.group(1), f"-j {hook.group(2)}"))
        elif line.startswith(":" + CHAIN_PREFIX):
            cur.chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            chain, _, spec = line[3:].partition(" ")
            if chain.startswith(CHAIN_PREFIX):
                cur.rules.append(line)
            elif re.search(rf"-[jg] {CHAIN_PREFIX}\S+$", spec):
                cur.hooks.append((chain, spec))
    return out


@dataclass
class Applier:
    variant: str | None = None  # "nft" | "legacy" | None
    between: Callable[[], None] | None = None  # test hook: runs between ipset and iptables
    created: list[str] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)
    undo: list[str] = field(default_factory=list)  # ipset commands undoing the switch

    @classmethod
    def from_env(cls) -> Applier:
        variant = os.environ.get(VARIANT_ENV) or None
        if variant not in (None, "nft", "legacy"):
            raise BackendError(f"{VARIANT_ENV} must be nft or legacy, not {variant!r}")
        return cls(variant)

    # -- processes ---------------------------------------------------------

    def tool(self, family: str, suffix: str = "") -> str:
        name = family + (f"-{self.variant}" if self.variant else "") + suffix
        path = shutil.which(name)
        if path is None:
            raise BackendError(f"{name} is not installed")
        return path

    def run(self, argv: list[str], text: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise BackendError(f"{os.path.basename(argv[0])} failed: {proc.stderr.strip()}")
        return proc.stdout

    def ipset(self, script: str, check: bool = True) -> None:
        if script.strip():
            self.run([self.ipset_bin(), "restore"], script, check)

    def ipset_bin(self) -> str:
        path = shutil.which("ipset")
        if path is None:
            raise BackendError("ipset is not installed")
        return path

    # -- ipset -------------------------------------------------------------

    def live_sets(self) -> dict[str, tuple[str, str]]:
        """policyc's sets in the kernel: name -> (type, family)."""
        out: dict[str, tuple[str, str]] = {}
        name = typ = ""
        for line in self.run([self.ipset_bin(), "list", "-t"]).splitlines():
            key, _, value = line.partition(": ")
            if key == "Name":
                name = value.strip()
            elif key == "Type":
                typ = value.strip()
            elif key == "Header" and name.startswith(PREFIX):
                fam = re.search(r"family (\S+)", value)
                out[name] = (typ, fam.group(1) if fam else "")
        return out

    def stage_sets(self, desired: list[IpSet], live: dict[str, tuple[str, str]]) -> None:
        self.destroy([n for n in live if n.startswith((TMP_PREFIX, OLD_PREFIX))])
        lines = []
        for s in desired:
            target = s.name if s.name not in live else tmp_name(s.name)
            (self.created if s.name not in live else self.staged).append(s.name)
            lines.append(f"create {target} {s.type} {s.options}")
            lines.extend(f"add {target} {e}" for e in s.elements)
        try:
            self.ipset("\n".join(lines) + "\n")
        except BackendError:
            self.drop_new_sets()
            raise

    def switch_sets(self, desired: list[IpSet], live: dict[str, tuple[str, str]]) -> None:
        """Put the staged contents in place; one command at a time, so that
        exactly the switches that happened are undone on failure."""
        for s in desired:
            if s.name not in self.staged:
                continue
            tmp = tmp_name(s.name)
            if live[s.name] == (s.type, s.family):
                self.ipset(f"swap {tmp} {s.name}\n")
                self.undo.append(f"swap {tmp} {s.name}")
            else:
                old = old_name(s.name)
                self.ipset(f"rename {s.name} {old}\n")
                self.undo.append(f"rename {old} {s.name}")
                self.ipset(f"rename {tmp} {s.name}\n")
                self.undo.append(f"rename {s.name} {tmp}")

    def unswitch_sets(self) -> None:
        for cmd in reversed(self.undo):
            self.ipset(cmd + "\n", check=False)
        self.undo.clear()

    def drop_new_sets(self) -> None:
        self.destroy(self.created + [tmp_name(n) for n in self.staged])

    def destroy(self, names: list[str]) -> list[str]:
        """Destroy those of ``names`` that exist, one by one; returns failures."""
        present = set(self.run([self.ipset_bin(), "list", "-n"]).split())
        failed = []
        for name in names:
            if name in present:
                try:
                    self.ipset(f"destroy {name}\n")
                except BackendError as exc:
                    failed.append(f"{name}: {exc}")
        return failed

    # -- iptables ----------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, TableState]]:
        return {f: parse_tables(self.run([self.tool(f, "-save")])) for f in FAMILIES}

    def hook_present(self, family: str, table: str, builtin: str, spec: str) -> bool:
        argv = [self.tool(family), "-w", WAIT, "-t", table, "-C", builtin, *spec.split()]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode not in (0, 1, 2):
            raise BackendError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
        return proc.returncode == 0

    def with_hooks(self, family: str, text: str) -> tuple[str, list[tuple[str, str, str]]]:
        """The restore input plus the hook jumps that ``-C`` does not find."""
        out, added, table = [], [], ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
            hook = HOOK_RE.match(line)
            if hook and not self.hook_present(family, table, hook.group(1), f"-j {hook.group(2)}"):
                out.append(f"-I {hook.group(1)} 1 -j {hook.group(2)}")
                added.append((table, hook.group(1), f"-j {hook.group(2)}"))
            out.append(line)
        return "\n".join(out) + "\n", added

    def restore(self, family: str, text: str) -> None:
        self.run([self.tool(family, "-restore"), "-w", WAIT, "--noflush"], text)

    # -- ebtables (always the nft variant: see backends.ebtables) -----------

    def eb_save(self) -> str:
        return self.run([ebtables.tool("-save"), "-t", ebtables.TABLE])

    def eb_restore(self, text: str) -> None:
        self.run([ebtables.tool("-restore"), "--noflush"], text)

    def eb_apply(self, text: str, saved: str) -> bool:
        """Restore the ebtables input (hook added if missing); True if added."""
        if not text.strip():
            return False
        full, added = ebtables.with_hook(text, saved)
        self.eb_restore(full)
        return added

    def rollback_text(
        self,
        before: dict[str, TableState],
        new: dict[str, TableState],
        added: list[tuple[str, ...]],
    ) -> str:
        lines = []
        for table in sorted(set(before) | set(new)):
            old = before.get(table, TableState())
            fresh = new.get(table, TableState())
            chains = list(dict.fromkeys(old.chains + fresh.chains))
            if not chains:
                continue
            lines.append(f"*{table}")
            lines.extend(f":{c} - [0:0]" for c in chains)
            lines.extend(old.rules)
            lines.extend(f"-D {b} {spec}" for t, b, spec in added if t == table)
            lines.extend(f"-X {c}" for c in chains if c not in old.chains)
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def remove_stale(
        self, family: str, before: dict[str, TableState], new: dict[str, TableState]
    ) -> list[str]:
        lines: list[str] = []
        gone: list[str] = []
        for table, old in sorted(before.items()):
            keep = new.get(table, TableState()).chains
            stale = [c for c in old.chains if c not in keep]
            if not stale:
                continue
            lines.append(f"*{table}")
            lines.extend(f":{c} - [0:0]" for c in stale)
            lines.extend(f"-D {b} {spec}" for b, spec in old.hooks if spec.split()[-1] in stale)
            lines.extend(f"-X {c}" for c in stale)
            lines.append("COMMIT")
            gone.extend(f"{family} -t {table} {c}" for c in stale)
        if lines:
            self.restore(family, "\n".join(lines) + "\n")
        return gone

    # -- the whole apply ---------------------------------------------------

    def apply(self, parts: dict[str, str], check: bool = False) -> None:
        desired = parse_restore(parts["ipset"])
        new = {f: parse_tables(parts[f]) for f in FAMILIES}
        if check:
            return  # nothing can be checked without the sets in the kernel
        before = self.snapshot()
        eb_before = self.eb_save() if parts.get("ebtables", "").strip() else ""
        eb_done: bool | None = None  # None: not applied; else: hook added
        live = self.live_sets()
        added: dict[str, list[tuple[str, ...]]] = {f: [] for f in FAMILIES}
        self.stage_sets(desired, live)
        try:
            self.switch_sets(desired, live)
            if self.between is not None:
                self.between()
            for f in FAMILIES:
                text, hooks = self.with_hooks(f, parts[f])
                added[f] = list(hooks)
                self.restore(f, text)
            eb_done = self.eb_apply(parts.get("ebtables", ""), eb_before)
        except BackendError as exc:
            self.unswitch_sets()
            problems = []
            for f in FAMILIES:
                try:
                    self.restore(f, self.rollback_text(before[f], new[f], added[f]))
                except BackendError as again:
                    problems.append(str(again))
            if eb_done is not None:
                try:
                    self.eb_restore(ebtables.rollback_text(eb_before, eb_done))
                except BackendError as again:
                    problems.append(str(again))
            self.drop_new_sets()
            if problems:
                raise BackendError(f"{exc}\nrollback failed too: {'; '.join(problems)}") from exc
            raise BackendError(
                f"{exc}\nrolled back: the previous rules are still in effect"
            ) from exc
        self.finish(desired, live, before, new, added)
        if eb_done:
            _log(
                f"ebtables: inserted -t {ebtables.TABLE} -I {ebtables.BUILTIN} 1 "
                f"-j {ebtables.CHAIN}"
            )

    def finish(
        self,
        desired: list[IpSet],
        live: dict[str, tuple[str, str]],
        before: dict[str, dict[str, TableState]],
        new: dict[str, dict[str, TableState]],
        added: dict[str, list[tuple[str, ...]]],
    ) -> None:
        for f in FAMILIES:
            for table, builtin, spec in added[f]:
                _log(f"{f}: inserted -t {table} -I {builtin} 1 {spec}")
        extra = [tmp_name(n) for n in self.staged] + [
            old_name(s.name)
            for s in desired
            if s.name in live and live[s.name] != (s.type, s.family)
        ]
        for problem in self.destroy(extra):
            _log(f"warning: staging set kept: {problem}")
        for f in FAMILIES:
            for gone in self.remove_stale(f, before[f], new[f]):
                _log(f"removed stale chain {gone}")
        wanted = {s.name for s in desired}
        stale = sorted(n for n in set(live) - wanted if not n.startswith((TMP_PREFIX, OLD_PREFIX)))
        failed = self.destroy(stale)
        for problem in failed:
            _log(f"warning: stale set kept: {problem}")
        if len(stale) > len(failed):
            _log(f"removed {len(stale) - len(failed)} stale sets")
        variant = self.variant or "system default"
        _log(
            f"ipset: {len(self.created)} sets created, {len(self.staged)} updated; "
            f"iptables variant: {variant}"
        )
