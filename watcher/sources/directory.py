"""A directory as the whole desired state (``--source dir:PATH``).

Files as ``policyc compile`` reads them.  The folder is polled (cheap stat
calls; no inotify dependency), so files written in place, renamed over and
deleted are all seen.  A file that does not parse or validate is reported
with its location and its previous objects stay in force: a half-written
file never removes policy.
"""

from __future__ import annotations

import logging
import os
import threading

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


class DirectorySource:
    name = "dir"

    def __init__(self, path: str, interval: float = 0.05) -> None:
        self.path = path
        self.interval = interval
        self.stats: dict[str, Stat] = {}
        self.by_file: dict[str, dict[Key, Model]] = {}
        self.emitted: dict[Key, Model] = {}
        self._synced = False
        self.errors = 0
        self.gone = False  # the folder was missing at the last poll

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

    def _read(self, file: str) -> dict[Key, Model] | None:
        """The file's validated objects by key; None (logged) if any is invalid."""
        try:
            with open(file, encoding="utf-8") as fh:
                raws = parse_file(fh.read(), file, READERS)
            objs = read_all(raws, warn=lambda m: log.warning("%s", m))
        except FileNotFoundError:
            return {}
        except (InputError, InputErrors, OSError, UnicodeDecodeError) as exc:
            self.errors += 1
            log.error("file ignored, its previous objects stay in force: %s", exc)
            return None
        return {Key.of(obj): obj for obj in objs}

    def poll(self) -> bool:
        """Re-read changed files; True if anything changed on disk.  While
        the folder itself is gone (unmounted, moved) nothing changes: its
        objects stay in force, as for a file that does not validate."""
        if not os.path.isdir(self.path):
            if not self.gone:
                log.error("%s is not a directory; its objects stay in force", self.path)
            self.gone = True
            return False
        self.gone = False
        now = self._scan()
        if now == self.stats:
            return False
        for file in set(self.stats) | set(now):
            if self.stats.get(file) == now.get(file):
                continue
            if file not in now:
                self.by_file.pop(file, None)
                continue
            objs = self._read(file)
            if objs is not None:
                self.by_file[file] = objs
        self.stats = now
        return True

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
