"""Fault injection for tests: a backend wrapper whose ``apply`` fails while a
file exists, and an entry point that runs ``policyc`` with it.

Production code carries no fault switches; tests launch the agent as
``python -m tests.support.faulty FAULT_FILE watch ...`` instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import backends
from policyc.errors import BackendError


class FaultyBackend:
    def __init__(self, inner: Any, fault_file: str) -> None:
        self.inner = inner
        self.fault_file = fault_file
        self.name = getattr(inner, "name", "")  # the iptables module has none yet

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def apply(self, tx: Any) -> None:
        if os.path.exists(self.fault_file):
            raise BackendError(f"injected apply failure ({self.fault_file} exists)")
        self.inner.apply(tx)


def main(argv: list[str]) -> int:
    fault_file, rest = argv[0], argv[1:]
    for name, backend in list(backends.BACKENDS.items()):
        backends.BACKENDS[name] = FaultyBackend(backend, fault_file)
    from policyc.cli import main as policyc_main

    return policyc_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
