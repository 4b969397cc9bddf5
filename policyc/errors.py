"""Errors are values with locations.

Every layer raises one exception type; the CLI prints it without a traceback:

    file:line:col: Kind namespace/name: spec.path[i].field: message
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
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
    ) -> None:
        self.message = message
        self.loc = loc
        self.obj = obj
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.loc is not None:
            parts.append(str(self.loc))
        if self.obj:
            parts.append(self.obj)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class InputErrors(PolicycError):
    """Several input errors, reported together (sorted by location)."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = sorted(
            errors, key=lambda e: (e.loc.file, e.loc.line, e.loc.col) if e.loc else ("", 0, 0)
        )
        super().__init__("\n".join(str(e) for e in self.errors))


class BackendError(PolicycError):
    """The kernel refused a ruleset or a tool is missing."""
