"""The compact policy language -> NetworkPolicy (and ClusterNetworkPolicy,
:mod:`grammar.cluster_policy`) objects in API shape.

The transformer emits the same dicts a YAML file holds (with each value's
line and column), so validation, the model and the IR are shared with
``policyc compile`` on YAML: the language cannot drift from the API.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError
from lark.lexer import PatternStr

from grammar.cluster_policy import ClusterPolicyRules
from grammar.selector import parse_selector, to_api
from policyc.ctx import fmt_path
from policyc.errors import InputError, Location, printable
from policyc.load import Path, RawObject, Reader

# LALR(1) with the contextual lexer: linear time, ~20x faster than Earley on
# a 2,000-policy file (bench figures in the commit that made the switch).
_PARSER = Lark.open("policy.lark", rel_to=__file__, parser="lalr", propagate_positions=True)
SUFFIX = ".pol"
NAME_RE = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"  # NAME in policy.lark


def _loc(file: str, tok: Token | Tree[Any]) -> Location:
    if isinstance(tok, Tree):
        return Location(file, tok.meta.line, tok.meta.column)
    return Location(file, tok.line or 1, tok.column or 1)


@v_args(inline=True)
class ToObjects(ClusterPolicyRules, Transformer[Token, list[RawObject]]):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.loc_key = LOC

    def finish(self, obj: dict[str, Any], where: Location, ident: str) -> RawObject:
        """``obj`` (with the transformer's locations) as a located RawObject."""
        locs: dict[Path, Location] = {(): where}
        _take_locations(obj, (), locs, ident)
        return RawObject(obj, self.file, locs)

    def _selector(self, tok: Token | None) -> dict[str, object]:
        if tok is None or not str(tok).strip():
            return {}
        text = str(tok)
        lead = len(text) - len(text.lstrip())  # the token starts at the blank after `select`
        try:
            sel = parse_selector(text.strip(), self.file, tok.line or 1, (tok.column or 1) + lead)
        except InputError as exc:
            # Reported by ``policy`` once the object's name is known.
            return {ERROR: exc, LOC: _loc(self.file, tok)}
        return {**to_api(sel), LOC: _loc(self.file, tok)}

    def start(self, *policies: RawObject) -> list[RawObject]:
        return list(policies)

    def policy(self, name: Token, ns: Token, *body: Any) -> RawObject:
        spec: dict[str, Any] = {"podSelector": {}, "policyTypes": []}
        for item in body:
            if isinstance(item, tuple) and item[0] == "select":
                spec["podSelector"] = item[1]
            elif isinstance(item, tuple):
                direction, rules = item[0], item[1]
                word = "Ingress" if direction == "ingress" else "Egress"
                if word in spec["policyTypes"]:
                    raise InputError(
                        f"{direction} given twice", loc=item[2], obj=f"NetworkPolicy {ns}/{name}"
                    )
                spec["policyTypes"].append(word)
                key = "from" if direction == "ingress" else "to"
                spec[direction] = [
                    {(key if k == "peers" else k): v for k, v in r.items()} for r in rules
                ]
        obj = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": str(name), "namespace": str(ns)},
            "spec": spec,
        }
        locs: dict[Path, Location] = {(): _loc(self.file, name)}
        _take_locations(obj, (), locs, f"NetworkPolicy {ns}/{name}")
        return RawObject(obj, self.file, locs)

    def select(self, text: Token) -> tuple[str, dict[str, object]]:
        return ("select", self._selector(text))

    def section(self, direction: Token, *rules: dict[str, Any]) -> tuple[str, list[Any], Location]:
        return (str(direction), list(rules), _loc(self.file, direction))

    def allow(self, *parts: Any) -> dict[str, Any]:
        rule: dict[str, Any] = {}
        for part in parts:
            rule.update(part)
        firsts = [v[0] for v in rule.values() if isinstance(v, list) and v]
        if firsts and LOC in firsts[0]:
            rule[LOC] = firsts[0][LOC]
        return rule

    def peers(self, *items: dict[str, Any] | Token | None) -> dict[str, Any]:
        peers: list[dict[str, Any] | None] = []
        for item in items:
            if isinstance(item, Token):  # except_more: continues the last except list
                last = peers[-1] if peers else None
                block = last.get("ipBlock") if last else None
                if not block or "except" not in block:
                    raise InputError(
                        f"unexpected CIDR {str(item)!r} after ',': a new peer starts "
                        "with `cidr`, and only an `except` list takes bare CIDRs",
                        loc=_loc(self.file, item),
                    )
                block["except"].append(str(item))
            else:
                peers.append(item)
        if any(p is None for p in peers):
            return {}  # `any` among the peers: every peer
        return {"peers": peers}

    def except_more(self, cidr: Token) -> Token:
        return cidr

    def any_peer(self) -> None:
        return None

    def sel_peer(self, *parts: tuple[str, dict[str, object]]) -> dict[str, Any]:
        peer: dict[str, Any] = dict(parts)
        loc = next((v[LOC] for v in peer.values() if LOC in v), None)
        return {**peer, LOC: loc} if loc else peer

    def ns_part(self, arg: Token | None = None) -> tuple[str, dict[str, object]]:
        return ("namespaceSelector", self._selector(arg))

    def pods_part(self, arg: Token | None = None) -> tuple[str, dict[str, object]]:
        return ("podSelector", self._selector(arg))

    def cidr_peer(self, cidr: Token, *excepts: Token) -> dict[str, Any]:
        block: dict[str, Any] = {"cidr": str(cidr), LOC: _loc(self.file, cidr)}
        if excepts:
            block["except"] = [str(e) for e in excepts]
        return {"ipBlock": block, LOC: _loc(self.file, cidr)}

    def ports(self, *ports: dict[str, Any]) -> dict[str, Any]:
        return {"ports": list(ports)}

    def proto_port(self, proto: Token, port: Token) -> dict[str, Any]:
        return {"protocol": str(proto).upper(), **_port_value(port), LOC: _loc(self.file, proto)}

    def proto_only(self, proto: Token) -> dict[str, Any]:
        return {"protocol": str(proto).upper(), LOC: _loc(self.file, proto)}

    def bare_port(self, port: Token) -> dict[str, Any]:
        return {**_port_value(port), LOC: _loc(self.file, port)}


_RANGE = re.compile(r"([0-9]+)-([0-9]+)")


def _port_value(tok: Token) -> dict[str, Any]:
    """PORT as ``port`` (and ``endPort``): ``80``, ``80-90``, or a name (a
    valid port name has a letter, so a number or a range is never one)."""
    text = str(tok)
    if text.isdigit():
        return {"port": _port_number(text)}
    m = _RANGE.fullmatch(text)
    if m:
        return {"port": _port_number(m[1]), "endPort": _port_number(m[2])}
    return {"port": text}


def _port_number(tok: str) -> int:
    """NUMBER as an int, or 65536 when it has more than five significant
    digits, so validation reports "must be between 1 and 65535" instead of
    ``int()`` raising past Python's 4,300-digit conversion limit."""
    digits = str(tok).lstrip("0") or "0"
    return int(digits) if len(digits) <= 5 else 65536


LOC, ERROR = "\0loc", "\0error"  # side data carried in the dicts, never output


def _take_locations(value: Any, path: Path, locs: dict[Path, Location], ident: str) -> None:
    """Move the locations the transformer attached into ``locs`` (so that
    validation points at the line of the offending field) and report a bad
    selector with its object and field."""
    if isinstance(value, dict):
        loc = value.pop(LOC, None)
        if loc is not None:
            locs[path] = loc
        err = value.pop(ERROR, None)
        if isinstance(err, InputError):
            raise InputError(err.message, loc=err.loc, obj=ident, field=fmt_path(path))
        for k, v in value.items():
            _take_locations(v, (*path, k), locs, ident)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _take_locations(v, (*path, i), locs, ident)


def parse_policies(text: str, file: str = "<policy>") -> list[RawObject]:
    """NetworkPolicy objects of a ``.pol`` text; InputError on a syntax error,
    at its line and column, with the tokens lark expected there."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise syntax_error(exc, text, file) from None
    try:
        result = ToObjects(file).transform(tree)
    except VisitError as exc:
        err = exc.orig_exc
        if isinstance(err, InputError) and not err.obj and err.loc is not None:
            err = _in_object(err, text)  # raised before its policy was built
        raise err from None
    assert isinstance(result, list)
    return result


def _in_object(err: InputError, text: str) -> InputError:
    """``err`` naming the policy whose block holds it, with the caret."""
    assert err.loc is not None
    offset = _offset(text, err.loc.line, err.loc.col)
    heads = list(_POLICY_HEAD.finditer(text, 0, offset))
    obj = f"NetworkPolicy {heads[-1][2]}/{heads[-1][1]}" if heads else ""
    return InputError(err.message, loc=err.loc, obj=obj, context=_caret(text, offset))


READERS: dict[str, Reader] = {SUFFIX: parse_policies}

_TOKEN = re.compile(r"[\w./-]+|\S")  # what a reader takes for the unexpected word
_POLICY_HEAD = re.compile(r"\bpolicy\s+(" + NAME_RE + r")\s+in\s+(" + NAME_RE + r")\b")


def syntax_error(exc: UnexpectedInput, text: str, file: str) -> InputError:
    """``file:line:col: NetworkPolicy ns/name: syntax error ...: unexpected X,
    expected one of ...`` with the source line and a caret as context.

    lark reports the end of input at line -1: the position just past the last
    token is used instead.
    """
    token = getattr(exc, "token", None)
    at_end = isinstance(token, Token) and token.type == "$END"  # LALR's end of input
    if isinstance(exc, UnexpectedEOF) or at_end or exc.line < 1:
        offset = len(text.rstrip())
        found = "end of file"
    else:
        offset = _offset(text, exc.line, exc.column)
        word = _TOKEN.match(text, offset)
        found = repr(word.group()) if word else "end of file"
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    names: set[str] = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    if isinstance(exc, UnexpectedCharacters):
        names = names or set(exc.allowed or ())
    expected = sorted({word for n in names for word in _describe(n)})
    message = f"syntax error in policy language: unexpected {found}"
    if len(expected) > 2:
        message += ", expected one of " + ", ".join(expected)
    elif expected:
        message += ", expected " + " or ".join(expected)
    heads = list(_POLICY_HEAD.finditer(text, 0, offset))
    obj = f"NetworkPolicy {heads[-1][2]}/{heads[-1][1]}" if heads else ""
    return InputError(message, loc=Location(file, line, col), obj=obj, context=_caret(text, offset))


def _offset(text: str, line: int, column: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return start + column - 1


def _describe(terminal: str) -> list[str]:
    """A terminal as a reader knows it: its words if fixed (``'}'``,
    ``'ingress'``, ``'egress'``), else its name (``number``)."""
    if terminal in _WORDS:
        return _WORDS[terminal]
    try:
        pattern = _PARSER.get_terminal(terminal).pattern
    except KeyError:
        return [terminal]
    if isinstance(pattern, PatternStr):
        return [repr(pattern.value)]
    words = [_CASELESS.sub(r"\1", w) for w in pattern.value.removeprefix("(?:")[:-1].split("|")]
    if pattern.value.startswith("(?:") and all(w.isalpha() for w in words):
        return [repr(w) for w in words]  # DIRECTION, PROTO: alternatives of words
    return [terminal.lower().replace("_", " ")]


_WORDS = {"PROTO": ["'tcp'", "'udp'", "'sctp'"]}  # its regex has a lookahead
_CASELESS = re.compile(r"\(\?i:(\w+)\)")


def _caret(text: str, offset: int) -> str:
    """The source line holding ``offset`` (escaped, at most 100 columns) and a caret."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    source = text[start : len(text) if end < 0 else end]
    col = offset - start
    cut = max(0, col - 60)
    shown = source[cut : cut + 100]
    lead = printable(shown[: col - cut])
    return f"{printable(shown)}\n{' ' * len(lead)}^"
