"""The oracles: what every run of ``policyc compile`` must satisfy.

- exit code 0 or 2 only (and the one the input expects, if it expects one);
- no "Traceback"; within the time and memory bound;
- every ``policyc: error:`` line is ``file:line:col: ...`` naming a file we
  gave it, one line per error, with no raw control characters;
- exit 2 writes nothing (stdout empty, no ``-o`` files);
- exit 0: ``nft -c -f -`` accepts the nft script; the iptables files load
  (``ipset restore`` for real in a scratch namespace, ``iptables-restore
  --test``, ``ip6tables-restore --test``, ``ebtables-restore``), and every line
  fits its tool's limit and matches its whitelist grammar (``grammar``).

A finding's ``kind`` is a stable string (``too-long:ipset.restore``), the key
``known.KNOWN_FAILING`` uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.hostile import grammar
from tests.hostile.inputs import Expect, HostileInput
from tests.hostile.netns import sh
from tests.hostile.runner import OUT_DIR, Outcome

ERROR_PREFIX = "policyc: error: "
LOCATED = re.compile(r"([^:\n]+):(\d+):(\d+): ")
# A fix may end a long report with a count ("... and 19900 more errors").
SUMMARY = re.compile(r"(?:\.\.\.|and )?[\d,]+ (?:more|further|other)\b.*")
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
# Not C0/C1, yet a log reader splits lines on U+2028/U+2029 (Python's
# str.splitlines does) and a terminal reorders text on bidi controls.
UNICODE_CONTROL = re.compile("[\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken oracle: ``kind`` (stable, see module doc) and a detail."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail[:400]}"


_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt))\b", re.M)
# Classes that one fix removes, told apart by the message, not only the type.
_TRACEBACK_CLASSES = (
    (re.compile(r"Exceeds the limit \(\d+ digits\)"), "int-digits"),
    (re.compile(r"AddressValueError"), "AddressValueError"),
)


def traceback_class(text: str) -> str:
    """``traceback:<class>``: the exception type (or a finer class) at the end
    of the traceback, so that one bug is one finding kind."""
    tail = text[text.rfind("Traceback") :]
    for pattern, name in _TRACEBACK_CLASSES:
        if pattern.search(tail):
            return f"traceback:{name}"
    found = _EXCEPTION.findall(tail)
    return f"traceback:{found[-1] if found else 'unknown'}"


def check_process(inp: HostileInput, o: Outcome) -> list[Finding]:
    """The oracles that hold for every command, whatever its backend."""
    found = []
    if b"Traceback" in o.stderr or b"Traceback" in o.stdout:
        text = o.err + o.out
        found.append(Finding(traceback_class(text), text.strip().splitlines()[-1][:300]))
    if o.timed_out or o.code < 0:
        detail = f"code {o.code} after {o.seconds:.1f}s (timed out: {o.timed_out})"
        found.append(Finding("bound", detail))
    elif o.code not in (0, 2) and not found:
        found.append(Finding("exit-code", f"exit {o.code}: {o.err[-400:]}"))
    if o.code in (0, 2) and inp.expect is not Expect.EITHER:
        want = 0 if inp.expect is Expect.VALID else 2
        if o.code != want:
            found.append(Finding("expect", f"exit {o.code}, want {want}: {o.err[-300:]}"))
    found += check_stderr(inp, o)
    return found


WARNING_PREFIX = "warning: "


CONTEXT_INDENT = "    "


def _check_line(line: str, names: set[str]) -> Finding | None:
    """One stderr line: a policyc error or warning, located in a file we gave."""
    if line.startswith(ERROR_PREFIX):
        body = line[len(ERROR_PREFIX) :]
    elif line.startswith(WARNING_PREFIX):
        body = line[len(WARNING_PREFIX) :]
    elif line.startswith("policyc: "):
        return None
    else:
        return Finding("forged-line", f"not a policyc line: {line[:200]!r}")
    m = LOCATED.match(body)
    if m is None:
        if line.startswith(ERROR_PREFIX) and not SUMMARY.fullmatch(body):
            return Finding("error-location", repr(line[:200]))
        return None
    if m.group(1) not in names:
        return Finding("forged-line", f"names a file we never gave: {line[:200]!r}")
    if int(m.group(2)) < 1 or int(m.group(3)) < 1:
        return Finding("error-location", repr(line[:200]))
    return None


def check_stderr(inp: HostileInput, o: Outcome) -> list[Finding]:
    """Error lines: located, naming our files, escaped, never forged."""
    found = []
    text = o.stderr.decode("utf-8", "backslashreplace")
    raw = RAW_CONTROL.search(text)
    if raw is not None:
        around = text[max(0, raw.start() - 60) : raw.end() + 20]
        found.append(Finding("control-char", f"{raw.group()!r} in {around!r}"))
    uni = UNICODE_CONTROL.search(text)
    if uni is not None:
        around = text[max(0, uni.start() - 60) : uni.end() + 20]
        found.append(Finding("unicode-control", f"{uni.group()!r} in {around!r}"))
    if "Traceback" in text:
        return found
    names = set(inp.names)
    after_error = False
    for line in filter(None, text.split("\n")):
        # An error may show the offending source line and a caret under it,
        # indented: never at the start of a line, so never a forged message.
        if after_error and line.startswith(CONTEXT_INDENT):
            continue
        after_error = line.startswith(ERROR_PREFIX)
        finding = _check_line(line, names)
        if finding is not None:
            found.append(finding)
            break
    return found


def check_nft(o: Outcome, netns: str) -> list[Finding]:
    """Exit 0: the script loads (``nft -c -f -``) and no line can smuggle a statement."""
    if o.code != 0:
        return [Finding("output-on-error", o.out[:200])] if o.stdout else []
    found = [Finding("nft-line", bad) for bad in grammar.check_nft(o.stdout)[:3]]
    res = sh(netns, "nft -c -f -", o.stdout)
    if res.returncode != 0:
        found.append(Finding("nft-check", res.stderr.decode("utf-8", "replace")[-400:]))
    return found


LOADERS = {
    grammar.Format.IPSET: "ipset restore",
    grammar.Format.IPTABLES: "iptables-restore --test",
    grammar.Format.IP6TABLES: "ip6tables-restore --test",
    grammar.Format.EBTABLES: "ebtables-restore",
}
RESET = "nft flush ruleset; ipset destroy"  # the scratch namespace is ours alone


def check_iptables(o: Outcome, workdir: Path, netns: str) -> list[Finding]:
    """Exit 0: each file fits its grammar and loads in the scratch ``netns``
    (which is reset afterwards); exit 2: no files written."""
    out = workdir / OUT_DIR
    if o.code != 0:
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        return [Finding("output-on-error", f"wrote {written}")] if written or o.stdout else []
    found = []
    for fmt in grammar.Format:
        path = out / fmt.value
        if not path.exists():
            continue
        data = path.read_bytes()
        faults = grammar.check_lines(fmt, data)
        for why in ("too-long", "grammar"):
            first = next((f for f in faults if f.why == why), None)
            if first is not None:
                detail = f"line {first.lineno} ({first.length} bytes): {first.line!r}"
                found.append(Finding(f"{why}:{fmt.value}", detail))
        res = sh(netns, LOADERS[fmt], data)
        if res.returncode != 0:
            err = res.stderr.decode("utf-8", "replace")[-400:]
            found.append(Finding(f"kernel:{fmt.value}", err))
    sh(netns, RESET)
    return found


def check_compile(
    inp: HostileInput, backend: str, o: Outcome, workdir: Path, netns: str
) -> list[Finding]:
    """All oracles for one ``compile`` run."""
    found = check_process(inp, o)
    if o.code in (0, 2):
        if backend == "nftables":
            found += check_nft(o, netns)
        else:
            found += check_iptables(o, workdir, netns)
    return found
