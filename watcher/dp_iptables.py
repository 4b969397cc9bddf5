"""The watcher's iptables + ipset (+ ebtables) dataplane: incremental state,
minimal changes, rollback, drift detection by listing.

* A pod event dirties only the sets it belongs to: those are re-encoded and
  the kernel gets one ``ipset restore -exist`` batch of ``add``/``del`` lines
  for the changed members; no chain is rewritten.
* When rules may have changed (a policy or node event, or local pods, whose
  anti-spoofing rules are per pod port), the chains are rendered again and
  only the chains whose rules differ from what was programmed are declared
  in ``iptables-restore -w --noflush`` / ``ip6tables-restore`` /
  ``ebtables-nft-restore --noflush`` inputs.  A failure restores the
  snapshot taken before (``iptables-save``, ``ebtables-save``) and undoes the
  ipset batch: the previous rules stay in effect.
* The first sync, and the one after ``forget()`` (drift, a failed rollback),
  replaces everything through ``backends.iptables_apply.Applier``.

``POLICYC_IPTABLES_VARIANT`` (nft|legacy) selects the iptables tools as for
``policyc apply``; ebtables is always ebtables-nft (see ``backends.ebtables``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
from dataclasses import dataclass

from backends import ebtables
from backends.ipset import PREFIX, IpSet, ipsets, render_restore, tmp_name
from backends.iptables import (
    FAMILIES,
    TOOL,
    Ctx,
    TableInput,
    family_tables,
    render_tables,
    used_sets,
)
from backends.iptables_apply import Applier, TableState, parse_tables
from policyc.chains import Ruleset
from policyc.compiler import Compiler
from policyc.errors import BackendError
from policyc.ir import SetDef, SetKind
from policyc.lower import lower
from policyc.passes import optimise

log = logging.getLogger("policyc.watch")

FAULT_ENV = "POLICYC_FAULT_APPLY"  # test hook: a file; while it exists, applies fail
# IR sets rendered as rule variants, not ipsets: their members are in the rules.
EXPANDED = (SetKind.PORTS, SetKind.IFACE, SetKind.IFACE_ADDR)
TOOLS = ("iptables", "ip6tables", "ebtables")
ChainKey = tuple[str, str]  # (table, chain)


@dataclass
class SyncResult:
    commands: int
    changed: bool


@dataclass
class Rendered:
    """The chains and ipset names one rendering of the rules needs."""

    tables: dict[str, list[TableInput]]  # iptables / ip6tables
    eb_text: str
    chains: dict[str, dict[ChainKey, tuple[str, ...]]]  # tool -> chain -> "-A" lines
    used: set[str]  # ipset names the rules refer to
    ir_sets: tuple[str, ...]  # IR names of the ruleset's ipset-backed sets


def _chain_rules(t: TableInput) -> dict[ChainKey, tuple[str, ...]]:
    out: dict[ChainKey, list[str]] = {(t.table, c): [] for c in t.chains}
    for line in t.lines:
        if line.startswith("-A "):
            out[(t.table, line.split()[1])].append(line)
    return {k: tuple(v) for k, v in out.items()}


def _elem_key(e: str) -> str:
    return e.split()[0]  # "10.244.1.16/30 nomatch" -> "10.244.1.16/30"


def _faulty() -> bool:
    path = os.environ.get(FAULT_ENV)
    return bool(path) and os.path.exists(str(path))


class IptablesDataplane:
    name = "iptables"

    def __init__(self, opt: bool = True) -> None:
        self.opt = opt
        self.applier = Applier.from_env()
        self.variant = self.applier.variant
        self.rendered: Rendered | None = None
        self.recompute = True  # re-render the rules and re-encode every set
        self.set_cache: dict[str, list[IpSet]] = {}  # IR name -> its ipsets
        # what the kernel holds (None: unknown, replace everything)
        self.chains: dict[str, dict[ChainKey, tuple[str, ...]]] | None = None
        self.sets: dict[str, IpSet] | None = None
        self.fingerprint: str | None = None

    # -- desired state -----------------------------------------------------

    def ruleset(self, compiler: Compiler) -> Ruleset:
        graph = compiler.graph(elements=False)
        sets = tuple(compiler.set_def(s.name) if s.kind in EXPANDED else s for s in graph.sets)
        return lower(optimise(dataclasses.replace(graph, sets=sets), self.opt))

    def render(self, compiler: Compiler) -> Rendered:
        rs = self.ruleset(compiler)
        sets: dict[str, SetDef] = {s.name: s for s in (*rs.sets, *rs.bridge_sets)}
        tables = {TOOL[f]: family_tables(rs, f, Ctx(f, sets)) for f in FAMILIES}
        chains: dict[str, dict[ChainKey, tuple[str, ...]]] = {}
        for tool, tabs in tables.items():
            chains[tool] = {}
            for t in tabs:
                chains[tool].update(_chain_rules(t))
        eb_text = "\n".join(ebtables.render(rs.bridge, sets)) + "\n"
        chains["ebtables"] = {(ebtables.TABLE, ebtables.CHAIN): tuple(ebtables.rules_of(eb_text))}
        used = used_sets(tables["iptables"]) | used_sets(tables["ip6tables"])
        ir_sets = tuple(s.name for s in rs.sets if s.kind not in EXPANDED)
        return Rendered(tables, eb_text, chains, used, ir_sets)

    def desired(self, compiler: Compiler) -> tuple[Rendered, dict[str, IpSet], bool]:
        """(rendering, ipsets by name, whether the rules were rendered again)."""
        ch = compiler.changes()
        dirty = set(ch.dirty)
        kinds = {n: compiler.specs[n].kind for n in dirty if n in compiler.specs}
        rerender = (
            self.rendered is None
            or self.recompute
            or ch.rules
            or any(k in EXPANDED for k in kinds.values())
        )
        if rerender:
            self.rendered = self.render(compiler)
        assert self.rendered is not None
        if self.recompute:
            self.set_cache.clear()
            dirty = set(self.rendered.ir_sets)
        self.recompute = False
        want: dict[str, IpSet] = {}
        for name in self.rendered.ir_sets:
            if name in dirty or name not in self.set_cache:
                self.set_cache[name] = ipsets(compiler.set_def(name), FAMILIES)
            for s in self.set_cache[name]:
                if s.name in self.rendered.used:
                    want[s.name] = s
        for name in list(self.set_cache):
            if name not in self.rendered.ir_sets:
                del self.set_cache[name]
        missing = self.rendered.used - set(want)
        if missing:
            raise BackendError(f"rules refer to sets that are not rendered: {sorted(missing)}")
        return self.rendered, want, rerender

    # -- sync --------------------------------------------------------------

    def sync(self, compiler: Compiler) -> SyncResult:
        try:
            rendered, want, rerender = self.desired(compiler)
        except BackendError:
            self.recompute = True
            raise
        if self.chains is None or self.sets is None:
            if _faulty():
                self.recompute = True
                raise BackendError(f"injected apply failure ({FAULT_ENV})")
            return self.full(rendered, want)
        set_lines, undo, created = self.set_changes(want)
        chain_changes = {t: self.changed_chains(t, rendered) for t in TOOLS} if rerender else {}
        stale_chains = (
            any(k not in rendered.chains[t] for t in TOOLS for k in self.chains.get(t, {}))
            if rerender
            else False
        )
        stale_sets = [n for n in self.sets if n not in want]
        n_chain = sum(len(c) for c in chain_changes.values())
        if not set_lines and not n_chain and not stale_chains and not stale_sets:
            return SyncResult(0, False)
        if _faulty():
            self.recompute = True
            raise BackendError(f"injected apply failure ({FAULT_ENV})")
        try:
            if set_lines:
                self.ipset_batch(set_lines, undo, created)
            if n_chain:
                try:
                    self.rewrite(rendered, chain_changes)
                except BackendError:
                    self.undo_sets(undo, created)
                    raise
        except BackendError:
            self.recompute = True
            raise
        except Exception:
            self.forget()
            raise
        # committed: from here on failures only leave extra, unreferenced things
        self.chains = {t: dict(rendered.chains[t]) for t in TOOLS}
        self.sets = dict(want)
        if stale_chains:
            self.remove_stale_chains(rendered)
        if stale_sets:
            for problem in self.applier.destroy(stale_sets):
                log.warning("stale set kept: %s", problem)
        self.fingerprint = self.listing()
        return SyncResult(len(set_lines) + n_chain + len(stale_sets), True)

    def full(self, rendered: Rendered, want: dict[str, IpSet]) -> SyncResult:
        """Replace everything (start-up, after drift or a failed rollback)."""
        parts = {
            "ipset": "\n".join(render_restore(sorted(want.values(), key=lambda s: s.name))) + "\n",
            "iptables": "\n".join(render_tables(rendered.tables["iptables"])) + "\n",
            "ip6tables": "\n".join(render_tables(rendered.tables["ip6tables"])) + "\n",
            "ebtables": rendered.eb_text,
        }
        try:
            Applier(self.variant).apply(parts)
        except BackendError:
            self.recompute = True
            raise
        self.chains = {t: dict(rendered.chains[t]) for t in TOOLS}
        self.sets = dict(want)
        self.fingerprint = self.listing()
        n = sum(len(c) for c in rendered.chains.values()) + len(want)
        return SyncResult(n, True)

    # -- ipset ---------------------------------------------------------------

    def set_changes(self, want: dict[str, IpSet]) -> tuple[list[str], list[str], list[str]]:
        """(batch lines, undo lines, names of sets created) for the member changes."""
        assert self.sets is not None
        lines: list[str] = []
        undo: list[str] = []
        created: list[str] = []
        for name, s in want.items():
            old = self.sets.get(name)
            if old is None:
                lines.append(f"create {name} {s.type} {s.options}")
                lines.extend(f"add {name} {e}" for e in s.elements)
                created.append(name)
                continue
            if (old.type, old.family) != (s.type, s.family):
                self.forget()  # the next sync renames it away in a full apply
                raise BackendError(f"set {name} changed type: needs a full apply")
            if old.options != s.options:  # maxelem: swap in a bigger copy
                tmp = tmp_name(name)
                lines.append(f"create {tmp} {s.type} {s.options}")
                lines.extend(f"add {tmp} {e}" for e in s.elements)
                lines += [f"swap {tmp} {name}", f"destroy {tmp}"]
                continue
            before = {_elem_key(e): e for e in old.elements}
            after = {_elem_key(e): e for e in s.elements}
            for k, e in before.items():
                if after.get(k) != e:
                    lines.append(f"del {name} {k}")
                    undo.append(f"add {name} {e}")
            for k, e in after.items():
                if before.get(k) != e:
                    lines.append(f"add {name} {e}")
                    undo.append(f"del {name} {k}")
        return lines, undo, created

    def ipset_batch(self, lines: list[str], undo: list[str], created: list[str]) -> None:
        try:
            self.applier.run(
                [self.applier.ipset_bin(), "restore", "-exist"], "\n".join(lines) + "\n"
            )
        except BackendError:
            self.undo_sets(undo, created)
            raise

    def undo_sets(self, undo: list[str], created: list[str]) -> None:
        if undo:
            self.applier.run(
                [self.applier.ipset_bin(), "restore", "-exist"],
                "\n".join(reversed(undo)) + "\n",
                check=False,
            )
        self.applier.destroy(created)

    # -- chains --------------------------------------------------------------

    def changed_chains(self, tool: str, rendered: Rendered) -> dict[ChainKey, tuple[str, ...]]:
        assert self.chains is not None
        prev = self.chains.get(tool, {})
        return {k: v for k, v in rendered.chains[tool].items() if prev.get(k) != v}

    def ipt_input(
        self, tool: str, rendered: Rendered, changed: dict[ChainKey, tuple[str, ...]]
    ) -> str:
        """A restore input declaring only the changed chains (plus the hook
        comments of their tables, which ``with_hooks`` checks)."""
        lines: list[str] = []
        for t in rendered.tables[tool]:
            mine = [c for c in t.chains if (t.table, c) in changed]
            if not mine:
                continue
            lines.append(f"*{t.table}")
            lines.extend(f":{c} - [0:0]" for c in mine)
            for c in mine:
                lines.extend(changed[(t.table, c)])
            lines.extend(
                f"# hook (apply inserts it unless -C finds it): -I {b} 1 -j {c}" for b, c in t.hooks
            )
            lines.append("COMMIT")
        return "\n".join(lines) + "\n" if lines else ""

    def rewrite(
        self, rendered: Rendered, changes: dict[str, dict[ChainKey, tuple[str, ...]]]
    ) -> None:
        """Restore the changed chains tool by tool; roll every tool back on failure."""
        ap = Applier(self.variant)
        before = ap.snapshot()
        eb_before = ap.eb_save() if changes.get("ebtables") else ""
        done: list[tuple[str, dict[str, TableState], list[tuple[str, ...]]]] = []
        eb_hook: bool | None = None
        try:
            for tool in ("iptables", "ip6tables"):
                text = self.ipt_input(tool, rendered, changes.get(tool, {}))
                if not text:
                    continue
                full, hooks = ap.with_hooks(tool, text)
                new = parse_tables(text)
                ap.restore(tool, full)
                done.append((tool, new, list(hooks)))
            eb = changes.get("ebtables", {})
            if eb:
                text = (
                    "\n".join(
                        [
                            f"*{ebtables.TABLE}",
                            f":{ebtables.CHAIN} RETURN",
                            *eb[(ebtables.TABLE, ebtables.CHAIN)],
                            ebtables.HOOK_COMMENT,
                            "COMMIT",
                        ]
                    )
                    + "\n"
                )
                eb_hook = ap.eb_apply(text, eb_before)
        except BackendError as exc:
            problems = []
            for tool, new, added in reversed(done):
                try:
                    ap.restore(tool, ap.rollback_text(before[tool], new, added))
                except BackendError as again:
                    problems.append(str(again))
            if problems:
                self.forget()
                raise BackendError(f"{exc}\nrollback failed too: {'; '.join(problems)}") from exc
            raise BackendError(
                f"{exc}\nrolled back: the previous rules are still in effect"
            ) from exc
        if eb_hook:
            log.info(
                "ebtables: inserted -t %s -I %s 1 -j %s",
                ebtables.TABLE,
                ebtables.BUILTIN,
                ebtables.CHAIN,
            )

    def remove_stale_chains(self, rendered: Rendered) -> None:
        ap = Applier(self.variant)
        before = ap.snapshot()
        for tool in ("iptables", "ip6tables"):
            keep = {t.table: TableState(chains=list(t.chains)) for t in rendered.tables[tool]}
            try:
                for gone in ap.remove_stale(tool, before[tool], keep):
                    log.info("removed stale chain %s", gone)
            except BackendError as exc:
                log.warning("stale chains kept: %s", exc)

    # -- drift, cleanup, size ------------------------------------------------

    def listing(self) -> str:
        """policyc's chains, hooks and sets as the kernel shows them, normalised."""
        ap = self.applier
        out: list[str] = []
        for tool in ("iptables", "ip6tables"):
            saved = ap.run([ap.tool(tool, "-save")])
            table = ""
            for line in saved.splitlines():
                if line.startswith("*"):
                    table = line
                elif "POLICYC-" in line and not line.startswith("#"):
                    out.append(f"{tool} {table} " + re.sub(r"\[\d+:\d+\]", "", line))
        if shutil.which("ebtables-nft-save") or shutil.which("ebtables-save"):
            saved = ap.eb_save()
            out += [
                f"ebtables {line}"
                for line in saved.splitlines()
                if "POLICYC-" in line and not line.startswith("#")
            ]
        sets = ap.run([ap.ipset_bin(), "save"])
        members = []
        for line in sets.splitlines():
            words = line.split()
            if len(words) > 1 and words[1].startswith(PREFIX):
                members.append(re.sub(r" initval 0x[0-9a-f]+", "", line))
        return "\n".join(out + sorted(members)) + "\n"

    def drifted(self) -> bool:
        """Has anyone changed policyc's chains or sets behind our back?"""
        return self.fingerprint is not None and self.listing() != self.fingerprint

    def forget(self) -> None:
        """The next sync replaces everything (start-up, drift, failed rollback)."""
        self.chains = None
        self.sets = None
        self.rendered = None
        self.recompute = True

    def cleanup(self) -> None:
        """Remove policyc's hooks, chains and sets; nothing else."""
        ap = self.applier
        for tool in ("iptables", "ip6tables"):
            try:
                state = parse_tables(ap.run([ap.tool(tool, "-save")]))
                lines: list[str] = []
                for table, st in sorted(state.items()):
                    if not st.chains:
                        continue
                    lines.append(f"*{table}")
                    lines.extend(f":{c} - [0:0]" for c in st.chains)
                    lines.extend(f"-D {b} {spec}" for b, spec in st.hooks)
                    lines.extend(f"-X {c}" for c in st.chains)
                    lines.append("COMMIT")
                if lines:
                    ap.restore(tool, "\n".join(lines) + "\n")
            except BackendError as exc:
                log.warning("cleanup %s: %s", tool, exc)
        try:
            text = ebtables.cleanup_text(ap.eb_save())
            if text:
                ap.eb_restore(text)
        except BackendError as exc:
            log.warning("cleanup ebtables: %s", exc)
        try:
            ours = [
                n for n in ap.run([ap.ipset_bin(), "list", "-n"]).split() if n.startswith(PREFIX)
            ]
            for problem in ap.destroy(ours):
                log.warning("cleanup: set kept: %s", problem)
        except BackendError as exc:
            log.warning("cleanup ipset: %s", exc)
        self.forget()
        self.fingerprint = None

    def size(self) -> dict[str, int]:
        if self.chains is None or self.sets is None:
            return {}
        return {
            "sets": len(self.sets),
            "elements": sum(len(s.elements) for s in self.sets.values()),
            "rules": sum(len(r) for c in self.chains.values() for r in c.values()),
        }
