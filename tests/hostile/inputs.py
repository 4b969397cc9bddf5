"""What a hostile input is: named files for ``policyc compile``, extra CLI
arguments, and what the exit code must be."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Expect(enum.StrEnum):
    """The exit code an input must give: 0, 2, or either (mutations)."""

    VALID = "valid"  # exit 0, output accepted by the kernel tools
    INVALID = "invalid"  # exit 2, located error lines, nothing emitted
    EITHER = "either"  # 0 or 2, whichever the API rules say


@dataclass(frozen=True, slots=True)
class HostileInput:
    """One input.  ``files`` are (name, bytes) written into an empty directory
    and given to the CLI by name, in order; ``cls`` is the class counted in the
    figures; ``ident`` is unique within a run and names the input in reports."""

    cls: str
    ident: str
    files: tuple[tuple[str, bytes], ...]
    expect: Expect = Expect.EITHER
    args: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.files)

    def size(self) -> int:
        return sum(len(body) for _, body in self.files)
