"""Cyclic GC off while a large, long-lived structure is built.

A cold compile of L (150,000 pods) allocates tens of millions of objects
that all live until the process ends: the model, the builder's indexes, the
ruleset.  CPython's generational GC walks every tracked object in each full
collection, and a full collection runs whenever the survivors have grown by
25 %, so a build of that size spent more than half its time walking what it
had just built (measured at 30,000 pods: 5.3 s of a 9.0 s build in 4 full
collections), and lower and render paid again.

``bulk(n)`` disables the cyclic GC for the block (reference counting still
frees everything that is not in a cycle).  When ``n``, the number of objects
the block builds, is at least ``FREEZE_AT``, it then moves every tracked
object to the permanent generation (``gc.freeze``) so that later full
collections do not walk them again.  Python documents this for long-lived
data: "gc.freeze(): Freeze all the objects tracked by gc - move them to a
permanent generation and ignore them in all the future collections."  Small
builds (tests, S) are left to the collector as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE_AT = 20_000  # objects (pods, policies...) built in one go


@contextmanager
def bulk(n: int) -> Iterator[None]:
    """Run the block with the cyclic GC off; freeze what exists afterwards
    if ``n`` >= FREEZE_AT.  Nests: only the outermost block re-enables."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if n >= FREEZE_AT:
            gc.freeze()
        if was_enabled:
            gc.enable()
