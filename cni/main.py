"""``policyc-cni``: the executable the container runtime runs.

Kept import-light (json, os, sys, socket): the real work is done either by
the node agent over a unix socket (thick mode, pyroute2 already loaded) or,
when no agent is listening, by importing ``cni.plugin`` here (standalone).
"""

from __future__ import annotations

import os
import sys

from cni import agent_client

TYPE_CHECKING = False  # avoid importing `typing` on the fast path
if TYPE_CHECKING:
    from collections.abc import Mapping


def run(environ: Mapping[str, str], stdin: bytes) -> tuple[int, str]:
    if environ.get("CNI_COMMAND") == "VERSION":
        from cni.spec import version_reply

        return 0, version_reply(stdin)
    reply = agent_client.call(agent_client.socket_path(environ, stdin), environ, stdin)
    if reply is not None:
        return reply
    from cni.plugin import execute  # standalone: pays for pyroute2 here

    outcome = execute(dict(environ), stdin)
    return outcome.code, outcome.stdout


def main() -> None:
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    code, out = run(os.environ, stdin)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
