"""Delegated IPAM: run ``ipam.type`` from CNI_PATH, as the spec describes.

SPEC "Delegated plugin execution": the delegate is looked up in CNI_PATH,
executed with the same environment and the same network configuration on
stdin, and its result (or error) is passed back up.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cni.config import Env
from cni.result_check import check_result
from cni.spec import (
    ERR_DECODE,
    ERR_INTERNAL,
    ERR_INVALID_CONFIG,
    SUPPORTED,
    CNIError,
    at_least,
    normalize_result,
)

BUILTIN = ("policyc-host-local", "host-local-builtin")
TIMEOUT_S = 60.0


def find(env: Env, ptype: str) -> str:
    if "/" in ptype or ptype in (".", ".."):
        raise CNIError(ERR_INVALID_CONFIG, f"invalid ipam type {ptype!r}")
    for directory in env.path:
        candidate = os.path.join(directory, ptype)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(ERR_INVALID_CONFIG, f"failed to find plugin {ptype!r} in path {list(env.path)}")


def invoke(env: Env, command: str, config: dict[str, Any], ptype: str) -> str:
    """Exec the delegate; raise its error JSON as a CNIError."""
    import subprocess  # only when delegating: ~5 ms off the built-in IPAM's import path

    exe = find(env, ptype)
    child_env = dict(env.raw)
    child_env["CNI_COMMAND"] = command
    child_env.setdefault("PATH", os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
    try:
        proc = subprocess.run(
            [exe],
            input=json.dumps(config).encode(),
            env=child_env,
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CNIError(ERR_INTERNAL, f"failed to run IPAM plugin {ptype}", str(exc)) from exc
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise _as_error(out, ptype, proc.stderr.decode(errors="replace"))
    return out


def _as_error(out: str, ptype: str, stderr: str) -> CNIError:
    try:
        doc = json.loads(out)
        code = doc["code"]
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError("code is not an integer")
        return CNIError(code, f"{ptype}: {doc.get('msg', '')!s}", str(doc.get("details", "")))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return CNIError(ERR_INTERNAL, f"IPAM plugin {ptype} failed", (out + stderr).strip())


def add(env: Env, config: dict[str, Any], ptype: str) -> dict[str, Any]:
    out = invoke(env, "ADD", config, ptype)
    try:
        doc = json.loads(out)
    except (ValueError, RecursionError) as exc:
        raise CNIError(ERR_DECODE, f"IPAM plugin {ptype} returned bad JSON", out[:200]) from exc
    # SPEC code 6, "Failed to decode content": a reply without the result's shape.
    result = normalize_result(check_result(doc, ERR_DECODE, f"IPAM plugin {ptype}"))
    if not result.get("ips"):
        raise CNIError(ERR_INTERNAL, f"IPAM plugin {ptype} returned no IP configuration")
    return result


def delete(env: Env, config: dict[str, Any], ptype: str) -> None:
    invoke(env, "DEL", config, ptype)


def check(env: Env, config: dict[str, Any], ptype: str) -> None:
    invoke(env, "CHECK", config, ptype)


def speaks(env: Env, ptype: str, version: str) -> bool:
    """Does the delegate support ``version`` (e.g. for GC/STATUS, new in 1.1.0)?"""
    env2 = Env(command="VERSION", path=env.path, raw={"CNI_COMMAND": "VERSION"})
    try:
        out = invoke(env2, "VERSION", {"cniVersion": version}, ptype)
        supported = json.loads(out).get("supportedVersions", [])
    except (CNIError, ValueError, AttributeError, RecursionError):
        return False
    if not isinstance(supported, list):
        return False
    return any(v in SUPPORTED and at_least(v, version) for v in supported if isinstance(v, str))
