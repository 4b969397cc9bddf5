"""Run nftables commands through libnftables (falls back to the ``nft`` binary).

The project's one libnftables wrapper is ``backends/nftables/kernel.py``.
This small one stays because ``cni/`` may import only ``policyc.names``
(tests/test_layers.py): the CNI ADD path runs in a process started per call,
and importing the backend package would pull in the compiler's lowered layer
and the typed nft objects, which the plugin's fail-closed probe and ipMasq
rules (two fixed commands) do not need.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_local = threading.local()


class NftError(Exception):
    pass


def _ctx() -> Any:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        try:
            import nftables  # the pip-nftables ctypes module over libnftables.so.1

            ctx = nftables.Nftables()
            ctx.set_json_output(True)
        except (ImportError, OSError):
            ctx = False
        _local.ctx = ctx
    return ctx


def run(text: str) -> str:
    """Run an nft script atomically; return its (JSON) output."""
    ctx = _ctx()
    if ctx:
        rc, out, err = ctx.cmd(text)
        if rc != 0:
            raise NftError(err.strip() or f"nft failed rc={rc}")
        return str(out)
    import shutil  # rare fallback: keep subprocess off the import path
    import subprocess

    exe = shutil.which("nft") or "/usr/sbin/nft"
    proc = subprocess.run([exe, "-j", "-f", "-"], input=text.encode(), capture_output=True)
    if proc.returncode != 0:
        raise NftError(proc.stderr.decode(errors="replace").strip())
    return proc.stdout.decode()


def list_json(what: str) -> list[dict[str, Any]]:
    out = run(f"list {what}")
    return list(json.loads(out).get("nftables", [])) if out.strip() else []


def available() -> bool:
    try:
        run("list tables")
    except (NftError, OSError):
        return False
    return True
