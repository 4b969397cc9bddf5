"""The directory source cannot be fooled by file timestamps (issue 13 §6).

A file's stat (inode, size, mtime, ctime) only tells two versions apart if
the clock ticked between them: the kernel stamps files with a coarse clock
(one jiffy; seconds on some filesystems).  A file rewritten in place with
the same size within one tick, after the source read it, keeps its stat, so
a source that trusts the stat keeps the older text for good, e.g. namespace
``y`` without the label it just gained, or the empty text of a file it read
between the truncate and the write.  Here the filesystem's granularity is
played by a stat that never changes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from policyc.kinds import Key, Kind
from watcher.sources import directory
from watcher.sources.directory import DirectorySource

NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {stress: '%s'}}\n"


class FrozenStat:
    """What ``os.stat`` shows of a file whose writes all fall in one tick."""

    def __init__(self, path: Path, mtime_ns: int) -> None:
        st = os.stat(path)
        self.st_ino, self.st_size = st.st_ino, st.st_size
        self.st_mtime_ns = self.st_ctime_ns = mtime_ns


def frozen(monkeypatch: pytest.MonkeyPatch, path: Path, mtime_ns: int) -> None:
    stat = FrozenStat(path, mtime_ns)
    real = os.stat

    def fake(p: Any, *a: Any, **kw: Any) -> Any:
        return stat if os.fspath(p) == str(path) else real(p, *a, **kw)

    monkeypatch.setattr(directory.os, "stat", fake)


def labels(src: DirectorySource) -> dict[str, str]:
    ns = src.desired()[Key(Kind.NAMESPACE, "", "y")]
    return dict(ns.labels)  # type: ignore[union-attr]


def test_a_rewrite_within_the_tick_of_the_last_read_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ns-y.yaml"
    path.write_text(NS % "no")
    frozen(monkeypatch, path, time.time_ns())
    src = DirectorySource(str(tmp_path))
    assert src.poll() and labels(src)["stress"] == "no"
    path.write_text(NS % "on")  # same size, same tick: the stat cannot tell
    assert src.poll() and labels(src)["stress"] == "on"
    assert not src.poll()  # the same text again: nothing changed


def test_a_half_written_file_read_within_its_tick_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ns-y.yaml"
    path.write_text(NS % "no")
    src = DirectorySource(str(tmp_path))
    assert src.poll() and labels(src)["stress"] == "no"
    path.write_text((NS % "on")[:20])  # truncated and half written: invalid
    frozen(monkeypatch, path, time.time_ns())
    assert src.poll() and labels(src)["stress"] == "no" and src.errors == 1
    path.write_text(NS % "on")  # the rest of the write, in the same tick
    assert src.poll() and labels(src)["stress"] == "on"
    assert src.errors == 1


def test_a_settled_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ns-y.yaml"
    path.write_text(NS % "no")
    frozen(monkeypatch, path, time.time_ns() - 10 * directory.RACY_NS)
    src = DirectorySource(str(tmp_path))
    assert src.poll() and labels(src)["stress"] == "no"
    reads: list[str] = []

    def refresh(file: str) -> bool:
        reads.append(file)
        return False

    monkeypatch.setattr(src, "_refresh", refresh)
    assert not src.poll() and reads == []
