"""``policyc logs`` and ``policyc status``: read the node agent's drop log
and enforced signal (docs/observability.md).

Both talk to the agent's metrics server (``watch --listen``, default
127.0.0.1:9743): ``/drops`` (JSON lines; ``?follow=1`` keeps the stream
open) and ``/pods`` (JSON).  ``logs`` also reads the same JSON lines from
files or stdin, e.g. ``kubectl logs ds/policyc | policyc logs -``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from typing import IO, Any

from policyc.errors import InputError, PolicycError

DEFAULT_AGENT = "127.0.0.1:9743"
EXIT_PENDING = 3  # status: the pod's rules are not in the kernel yet
# The lines ``--help`` adds to the exit-code table (``policyc.cli.Command.exits``).
LOGS_EXITS = """\
for logs:
  0    every line was read: the agent's recent lines, or the files
  1    the agent could not be reached, or it closed the stream (with -f: it
       went away); a line on stderr says where the stream stopped
  130  -f stopped by Ctrl-C"""
STATUS_EXITS = """\
for status:
  0  the pod's rules are in the kernel
  1  the agent could not be reached
  2  the agent does not hold the pod (not on its node, or unknown)
  3  not yet: the pod is pending"""


class AgentGone(Exception):
    """The agent's ``/drops`` stream ended: with ``-f`` it only ends when the
    agent goes away; without, only when cut short (``why``)."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(url, why)
        self.url, self.why = url, why


def agent_address(text: str) -> str:
    """``--agent``: HOST:PORT (an IPv6 host in brackets), as ``watch --listen``;
    ``http://HOST:PORT`` (and a trailing ``/``) is taken as HOST:PORT, as
    the agent serves plain HTTP.  ArgumentTypeError (exit 2) for anything
    else: another scheme, a path, a bare IPv6 host, a port not in 1-65535.
    """
    want = "want HOST:PORT, e.g. 127.0.0.1:9743 or [::1]:9743"
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() != "http":
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: the agent serves plain http; {want}")
    addr = rest.removesuffix("/") if sep else text
    host, _, port = addr.rpartition(":")
    port_ok = port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
    if not (_host_ok(host) and port_ok) or len(text) > 300:
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: {want}")
    return addr


def _host_ok(host: str) -> bool:
    """A name or IPv4 address, or an IPv6 address in brackets; no path,
    user, query or space (they made ``http://http://...`` URLs)."""
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    bad = "/@?#[] \t" + ("" if inner is not host else ":")
    return bool(inner) and not any(c in bad for c in inner)


def _add_agent(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--agent",
        type=agent_address,
        default=DEFAULT_AGENT,
        help="the agent's --listen HOST:PORT (or http://HOST:PORT)",
    )


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def add_logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files of the agent's JSON lines, or - for stdin (default: ask the agent)",
    )
    _add_agent(p)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--namespace", help="only drops to or from pods of this namespace")
    p.add_argument("--pod", help="only drops to or from this pod (NAMESPACE/NAME or NAME)")
    p.add_argument(
        "--policy",
        help="only drops attributed to this policy "
        "(NAMESPACE/NAME, 'ClusterNetworkPolicy NAME' or a bare NAME)",
    )
    _add_output(p)


def add_status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pod", metavar="POD", help="NAMESPACE/NAME (NAME: in --namespace)")
    _add_agent(p)
    p.add_argument("-n", "--namespace", default="default", help="the namespace of a bare NAME")
    _add_output(p)


def _url(agent: str, path: str) -> str:
    return f"http://{agent}{path}"


def _open(url: str, timeout: float | None) -> IO[bytes]:
    try:
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http only)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PolicycError(f"cannot reach the agent at {url}: {exc}") from None


def _lines(args: argparse.Namespace) -> Iterator[str]:
    """The lines of the files, or of the agent's ``/drops``; AgentGone when
    the agent's stream ends while followed or is cut short."""
    if not args.paths:
        url = _url(args.agent, "/drops" + ("?follow=1" if args.follow else ""))
        with _open(url, None if args.follow else 10) as resp:
            try:
                for raw in resp:
                    yield raw.decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as exc:  # reset, truncated
                raise AgentGone(url, f": {exc or type(exc).__name__}") from None
        if args.follow:  # the agent never ends a followed stream while it runs
            raise AgentGone(url, "")
        return
    for path in args.paths:
        fh = sys.stdin if path == "-" else _read(path)
        yield from _follow(fh) if args.follow and path != "-" else fh


def _read(path: str) -> IO[str]:
    try:
        return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def _follow(fh: IO[str]) -> Iterator[str]:
    """``tail -f``: the lines there are, then new ones as they are written."""
    while True:
        line = fh.readline()
        if line:
            yield line
        else:
            time.sleep(0.2)


def _name_matches(want: str, key: str) -> bool:
    """``want`` is the whole key (``ns/name``, ``ClusterNetworkPolicy name``)
    or a bare name, which matches the name in any namespace or kind."""
    if want == key:
        return True
    if "/" in want:
        return False
    return (key.partition("/")[2] if "/" in key else key.rpartition(" ")[2]) == want


def keep(rec: dict[str, Any], args: argparse.Namespace) -> bool:
    """Does the record pass the --namespace, --pod and --policy filters?"""
    pods = [*rec.get("src", {}).get("pods", []), *rec.get("dst", {}).get("pods", [])]
    if args.namespace and not any(p.partition("/")[0] == args.namespace for p in pods):
        return False
    if args.pod and not any(_name_matches(args.pod, p) for p in pods):
        return False
    return not args.policy or any(_name_matches(args.policy, p) for p in rec.get("policies", []))


def text_line(rec: dict[str, Any]) -> str:
    """One drop as a line: time, verdict, direction, who, to whom, by what."""

    def side(s: dict[str, Any]) -> str:
        who = ",".join(s.get("pods", [])) or "-"
        ip = s.get("ip", "")
        addr = f"[{ip}]" if ":" in ip else ip
        return f"{who} ({addr}:{s.get('port', 0)})"

    by = ", ".join(rec.get("policies", [])) or "no policy (fail closed)"
    if rec.get("rule"):  # a ClusterNetworkPolicy Deny names its rule and tier
        by += f" rule {rec['rule']} ({rec.get('tier', '')})"
    verdict = "WOULD-DROP (audit)" if rec.get("verdict") == "would-drop" else "DROP"
    return (
        f"{rec.get('time', '')} {verdict} {rec.get('direction', '').lower()} "
        f"{side(rec.get('src', {}))} -> {side(rec.get('dst', {}))} "
        f"{rec.get('proto', '')} by {by}"
    )


def records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The drop records among ``lines`` (the agent's stdout holds other logs too)."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") in ("policy-drop", "policy-audit"):
            yield rec


def run_logs(args: argparse.Namespace) -> int:
    """Print the kept records; exit 0, or PolicycError (exit 1) naming where
    the stream stopped when the agent closed it (``-f``: it went away)."""
    read, last = 0, ""
    try:
        for rec in records(_lines(args)):
            read, last = read + 1, str(rec.get("time", ""))
            if keep(rec, args):
                out = json.dumps(rec, separators=(",", ":")) if args.output == "json" else None
                print(out or text_line(rec), flush=True)
    except AgentGone as gone:
        where = f"after {read} drop lines" + (f", the last of {last}" if last else "")
        gone_text = f"the agent at {gone.url} closed the stream{gone.why} ({where})"
        raise PolicycError(gone_text) from None
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Exit 0 when the pod's rules are in the kernel, 3 while pending, 2 when
    the agent does not hold the pod (not local, or unknown)."""
    key = args.pod if "/" in args.pod else f"{args.namespace}/{args.pod}"
    url = _url(args.agent, "/pods")
    with _open(url, 10) as resp:
        try:
            pods = json.load(resp)
        except (ValueError, OSError):
            pods = None
    if not isinstance(pods, dict):
        raise PolicycError(f"{url}: not the JSON of a policyc agent's /pods")
    st = pods.get(key)
    if st is None:
        raise InputError(f"pod {key}: not a pod of the agent's node at {args.agent}")
    if args.output == "json":
        print(json.dumps(st, indent=1))
    else:
        print(status_text(st))
    return 0 if st.get("enforced") else EXIT_PENDING


def status_text(st: dict[str, Any]) -> str:
    def when(ts: float | None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else "-"

    if st.get("enforced"):
        lat = st.get("latency") or 0.0
        state = f"yes, since {when(st.get('enforced_at'))} ({lat:.3f}s after the event)"
    else:
        state = f"no, pending since {when(st.get('since'))}"
    rows = [
        ("pod", st.get("pod", "")),
        ("ips", ", ".join(st.get("ips", [])) or "-"),
        ("enforced", state),
        ("ingress", ", ".join(st.get("ingress_policies", [])) or "not isolated"),
        ("egress", ", ".join(st.get("egress_policies", [])) or "not isolated"),
        ("audit", ", ".join(st.get("audit_policies", [])) or "-"),
    ]
    return "\n".join(f"{k + ':':<10}{v}" for k, v in rows)
