"""Parse label-selector expressions into ``policyc.model.Selector``."""

from __future__ import annotations

from collections import Counter

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from policyc import validate as v
from policyc.errors import InputError, Location
from policyc.model import Op, Requirement, Selector

_PARSER = Lark.open("selector.lark", rel_to=__file__, parser="lalr", propagate_positions=True)


@v_args(inline=True)
class ToSelector(Transformer[Token, Selector]):
    def __init__(self, file: str, line: int = 1, col: int = 1) -> None:
        super().__init__()
        self.file = file
        self.where = Location(file, line, col)  # the expression's own position

    def _at(self, line: int, col: int) -> Location:
        """A position inside the expression, as a position in the file."""
        w = self.where
        return Location(w.file, w.line + line - 1, (w.col if line == 1 else 1) + col - 1)

    def _key(self, key: Token) -> str:
        for msg in v.qualified_name(str(key)):
            raise InputError(
                f"invalid label key {str(key)!r}: {msg}",
                loc=self._at(key.line or 1, key.column or 1),
            )
        return str(key)

    def eq(self, key: Token, value: Token | None = None) -> Requirement:
        return Requirement(self._key(key), Op.IN, (str(value or ""),))

    def ne(self, key: Token, value: Token | None = None) -> Requirement:
        return Requirement(self._key(key), Op.NOT_IN, (str(value or ""),))

    def in_(self, key: Token, values: tuple[str, ...]) -> Requirement:
        return Requirement(self._key(key), Op.IN, values)

    def notin(self, key: Token, values: tuple[str, ...]) -> Requirement:
        return Requirement(self._key(key), Op.NOT_IN, values)

    def exists(self, key: Token) -> Requirement:
        return Requirement(self._key(key), Op.EXISTS)

    def not_exists(self, key: Token) -> Requirement:
        return Requirement(self._key(key), Op.DOES_NOT_EXIST)

    def values(self, *vals: Token | None) -> tuple[str, ...]:
        out = tuple(sorted({str(x) for x in vals if x is not None}))
        if not out:
            raise InputError("in/notin need at least one value", loc=self.where)
        return out

    def selector(self, *reqs: Requirement | None) -> Selector:
        real = [r for r in reqs if r is not None]
        return Selector(tuple(sorted(real, key=lambda r: (r.key, r.op, r.values))))


def parse_selector(text: str, file: str = "<selector>", line: int = 1, col: int = 1) -> Selector:
    """``app=web,env in (a,b)`` -> Selector; errors carry file:line:col."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        where = Location(file, line + exc.line - 1, (col if exc.line == 1 else 1) + exc.column - 1)
        raise InputError(f"invalid label selector {text!r}: unexpected input", loc=where) from None
    try:
        result = ToSelector(file, line, col).transform(tree)
    except VisitError as exc:
        raise exc.orig_exc from None
    assert isinstance(result, Selector)
    return result


def to_api(sel: Selector) -> dict[str, object]:
    """A Selector as a LabelSelector object (matchLabels + matchExpressions)."""
    # A key with two `in (v)` requirements cannot be one matchLabels entry (the
    # second would replace the first and select more): those stay expressions.
    single = Counter(r.key for r in sel.requirements if r.op is Op.IN and len(r.values) == 1)
    as_label = [
        r for r in sel.requirements if r.op is Op.IN and len(r.values) == 1 and single[r.key] == 1
    ]
    labels = {r.key: r.values[0] for r in as_label}
    exprs = [
        {"key": r.key, "operator": r.op.value, **({"values": list(r.values)} if r.values else {})}
        for r in sel.requirements
        if r not in as_label
    ]
    out: dict[str, object] = {}
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = exprs
    return out
