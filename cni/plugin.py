"""The in-process implementation: one request in, (exit code, stdout) out.

Dispatch only: the commands live in ``cni.add``, ``cni.delcheck``, ``cni.gc``
and ``cni.status``; what they share lives in ``cni.common``.  Used by
``cni.main`` in standalone mode and by ``cni.agent_server`` in thick mode.  It
never reads ``os.environ``: the request carries its environment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from cni.add import cmd_add
from cni.common import Outcome
from cni.config import Env, NetConf, decode, error_version, parse_env, parse_netconf
from cni.delcheck import cmd_check, cmd_del
from cni.gc import cmd_gc
from cni.spec import ERR_INTERNAL, LATEST, SUPPORTED, CNIError, version_reply
from cni.status import cmd_status

Command = Callable[[Env, NetConf], Outcome]
COMMANDS: dict[str, Command] = {
    "ADD": cmd_add,
    "DEL": cmd_del,
    "CHECK": cmd_check,
    "GC": cmd_gc,
    "STATUS": cmd_status,
}


def execute(environ: dict[str, str], stdin: bytes) -> Outcome:
    """Run one request; every failure becomes the spec's error JSON with exit 1."""
    version = ""
    try:
        env = parse_env(environ)
        if env.command == "VERSION":
            return Outcome(0, version_reply(stdin))
        conf = parse_netconf(decode(stdin), env.command)
        version = conf.version
        return COMMANDS[env.command](env, conf)
    except CNIError as exc:
        return Outcome(1, exc.to_json(version or _safe_version(stdin)))
    except Exception as exc:  # every failure must become error JSON
        import traceback  # ~10 ms to import: only when something went wrong

        traceback.print_exc(file=sys.stderr)
        err = CNIError(ERR_INTERNAL, f"{type(exc).__name__}: {exc}")
        return Outcome(1, err.to_json(version or _safe_version(stdin)))


def _safe_version(stdin: bytes) -> str:
    version = error_version(stdin)
    return version if version in SUPPORTED else LATEST
