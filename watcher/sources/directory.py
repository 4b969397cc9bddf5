"""A directory as the whole desired state (``--source dir:PATH``).

Files as ``policyc compile`` reads them.  The folder is polled (cheap stat
calls; no inotify dependency), so files written in place, renamed over and
deleted are all seen.  A file that does not parse or validate is reported
with its location and its previous objects stay in force: a half-written
file never removes policy.

A stat only tells two versions of a file apart if the clock ticked between
them (the kernel stamps files with a coarse clock: a jiffy, or seconds on
some filesystems), so, as git does with "racily clean" index entries, a file
read less than ``RACY_NS`` after its mtime is read again at the next poll
until a read comes late enough; the text is compared first, so a re-read
that finds the same text costs no parse.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from grammar.policylang import READERS as POL_READERS
from policyc.errors import InputError, InputErrors
from policyc.kinds import Key, Model
from policyc.load import YAML_READERS, parse_file
from policyc.parse import read_all
from watcher.sources.base import KINDS, Emit, Event, EventType

READERS = {**YAML_READERS, **POL_READERS}
SUFFIXES = tuple(READERS)
log = logging.getLogger("policyc.watch.dir")
Stat = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns
# Longer than any timestamp granularity a stat may hide a rewrite in (FAT: 2 s).
RACY_NS = 2_500_000_000


class DirectorySource:
    name = "dir"

    def __init__(self, path: str, interval: float = 0.05) -> None:
        self.path = path
        self.interval = interval
        self.stats: dict[str, Stat] = {}
        self.by_file: dict[str, dict[Key, Model]] = {}
        self.gone = False  # the folder was missing at the last poll
        self.texts: dict[str, str] = {}  # the text each file's objects came from
        self.read_at: dict[str, int] = {}  # time.time_ns() of each file's last read
        self.emitted: dict[Key, Model] = {}
        self._synced = False
        self.errors = 0

    def synced(self) -> bool:
        return self._synced

    def _scan(self) -> dict[str, Stat]:
        found: dict[str, Stat] = {}
        for root, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in names:
                if not name.endswith(SUFFIXES) or name.startswith("."):
                    continue
                full = os.path.join(root, name)
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                found[full] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return found

    def _parse(self, file: str, text: str) -> dict[Key, Model] | None:
        """The text's validated objects by key; None (logged) if any is invalid."""
        try:
            objs = read_all(parse_file(text, file, READERS), warn=lambda m: log.warning("%s", m))
        except (InputError, InputErrors) as exc:
            self.errors += 1
            log.error("file ignored, its previous objects stay in force: %s", exc)
            return None
        return {Key.of(obj): obj for obj in objs}

    def _refresh(self, file: str) -> bool:
        """Read ``file`` again; parse it only if its text changed.  True if it did."""
        self.read_at[file] = time.time_ns()
        try:
            with open(file, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            self.errors += 1
            log.error("file ignored, its previous objects stay in force: %s: %s", file, exc)
            return True
        if self.texts.get(file) == text:
            return False
        self.texts[file] = text
        objs = self._parse(file, text) if text else {}
        if objs is not None:
            self.by_file[file] = objs
        return True

    def _racy(self, file: str, stat: Stat | None) -> bool:
        """Was ``file`` last read so soon after its mtime that a rewrite in the
        same timestamp tick would leave its stat as it was?"""
        return stat is not None and self.read_at.get(file, 0) - stat[2] < RACY_NS

    def poll(self) -> bool:
        """Re-read changed files (and racily read ones); True if anything changed.
        While the folder itself is gone (unmounted, moved) nothing changes: its
        objects stay in force, as for a file that does not validate."""
        if not os.path.isdir(self.path):
            if not self.gone:
                log.error("%s is not a directory; its objects stay in force", self.path)
            self.gone = True
            return False
        self.gone = False
        now = self._scan()
        changed = False
        for file in sorted(set(self.stats) | set(now)):
            stat = now.get(file)
            if self.stats.get(file) == stat and not self._racy(file, stat):
                continue
            if stat is None:
                self.by_file.pop(file, None)
                self.texts.pop(file, None)
                self.read_at.pop(file, None)
                changed = True
                continue
            changed |= self._refresh(file)
        self.stats = now
        return changed

    def desired(self) -> dict[Key, Model]:
        """Every file's objects; an object in two files: the later file name wins."""
        merged: dict[Key, Model] = {}
        for file in sorted(self.by_file):
            merged.update(self.by_file[file])
        return merged

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self.poll()
        want = self.desired()
        for kind in KINDS:
            objs = tuple(o for k, o in sorted(want.items()) if k.kind is kind)
            emit(Event(EventType.SNAPSHOT, kind, objects=objs, origin=self.path))
        self.emitted = want
        self._synced = True
        while not stop.wait(self.interval):
            if self.poll():
                self._emit_changes(emit, self.desired())

    def _emit_changes(self, emit: Emit, want: dict[Key, Model]) -> None:
        for key in sorted(self.emitted.keys() - want.keys()):
            emit(Event(EventType.DELETED, key.kind, obj=key, origin=self.path))
        for key in sorted(want.keys()):
            old = self.emitted.get(key)
            if old == want[key]:
                continue
            kind = EventType.ADDED if old is None else EventType.MODIFIED
            emit(Event(kind, key.kind, obj=want[key], origin=self.path))
        self.emitted = want
