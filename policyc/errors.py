"""Errors are values with locations.

Every layer raises one exception type; the CLI prints it without a traceback:

    file:line:col: Kind namespace/name: spec.path[i].field: message
"""

from __future__ import annotations

from dataclasses import dataclass

# Errors shown, at most, before a count of the rest.
MAX_SHOWN = 100


def printable(text: str) -> str:
    """``text`` with every character that could end a line or drive a terminal
    escaped as Python writes it in a repr (``\\n``, ``\\x1b``, ``\\x00``).

    One error is one line, whatever the input holds.  Linear in ``len(text)``.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# Characters of one error part (object, field, message) shown, at most.
MAX_PART = 512


def clipped(text: str, limit: int = MAX_PART) -> str:
    """``text`` cut to about ``limit`` characters, keeping its head and its
    tail (where a message says what is wrong) around a count of what was cut.

    A 1 MB label value would otherwise be echoed whole, in every error of its
    object, and a log that splits long lines (journald's LineMax, 48K) would
    start a new entry with text the input chose."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}...[{len(text) - head - tail} characters]...{text[-tail:]}"


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        if self.line < 1:  # the file as a whole (missing, unknown format): no made-up position
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class PolicycError(Exception):
    """Base for every error shown to users."""


class InputError(PolicycError):
    """Bad input: YAML that cannot be read or an object the API server would reject."""

    def __init__(
        self,
        message: str,
        *,
        loc: Location | None = None,
        obj: str = "",
        field: str = "",
        context: str = "",
    ) -> None:
        self.message = message
        self.loc = loc
        self.obj = obj
        self.field = field
        # Lines shown under the error (a source line and a caret); never in str().
        self.context = context
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.loc is not None:
            parts.append(str(self.loc))
        if self.obj:
            parts.append(clipped(printable(self.obj)))
        if self.field:
            parts.append(clipped(printable(self.field)))
        parts.append(clipped(printable(self.message)))
        return printable(": ".join(parts))


class InputErrors(PolicycError):
    """Several input errors, reported together (sorted by location).

    ``lines()`` gives the first MAX_SHOWN errors and then one line counting
    the rest, so that a file with 20,000 bad ports reports in linear time
    and a readable length.
    """

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = sorted(
            errors, key=lambda e: (e.loc.file, e.loc.line, e.loc.col) if e.loc else ("", 0, 0)
        )
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One line per shown error, then ``N more errors not shown`` if any."""
        shown = [str(e) for e in self.errors[:MAX_SHOWN]]
        rest = len(self.errors) - len(shown)
        if rest > 0:
            shown.append(f"{rest} more errors not shown (first {MAX_SHOWN} above)")
        return shown


NOT_ENFORCED = "ClusterNetworkPolicy is not enforced by this dataplane yet"


class NotEnforced(InputError):
    """A ClusterNetworkPolicy (or v1alpha1 AdminNetworkPolicy or
    BaselineAdminNetworkPolicy) reached a dataplane that cannot lower the
    tiers yet: refused (exit 2), never silently ignored."""

    def __init__(self, obj: str) -> None:
        super().__init__(NOT_ENFORCED, obj=obj)


class BackendError(PolicycError):
    """The kernel refused a ruleset or a tool is missing."""
