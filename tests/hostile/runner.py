"""Drive the real ``policyc`` CLI in a subprocess with a time and memory bound.

The bound is set with ``resource.setrlimit`` in ``preexec_fn`` (address space
and CPU seconds) plus a wall-clock timeout, so a bomb ends as a failed oracle
and never as a stuck or swapping test run.  Commands that touch the kernel run
under ``ip netns exec NAME`` in a namespace the caller created.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.hostile.inputs import HostileInput

POLICYC = str(Path(sys.executable).parent / "policyc")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Per-command limits: wall-clock seconds and address space in bytes."""

    seconds: float = 20.0
    memory: int = 1 << 30


DEFAULT = Bounds()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did.  ``code`` is negative for a signal (``-9``: killed
    by the CPU or memory bound); ``timed_out`` when the wall clock ran out."""

    argv: tuple[str, ...]
    code: int
    stdout: bytes
    stderr: bytes
    seconds: float
    timed_out: bool

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "backslashreplace")

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "backslashreplace")


def _limiter(bounds: Bounds) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (bounds.memory, bounds.memory))
        cpu = int(bounds.seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    return limit


def run(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    netns: str | None = None,
    bounds: Bounds = DEFAULT,
) -> Outcome:
    """Run ``argv`` (inside ``netns`` if given) under ``bounds``; never raises
    for the command's own failure."""
    full = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            full,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            cwd=cwd,
            timeout=bounds.seconds,
            preexec_fn=_limiter(bounds),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(
            tuple(full), -9, exc.stdout or b"", exc.stderr or b"", time.monotonic() - start, True
        )
    return Outcome(
        tuple(full), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start, False
    )


def write_input(inp: HostileInput, directory: Path) -> list[str]:
    """Write the input's files into ``directory``; returns their names."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in inp.files:
        (directory / name).write_bytes(body)
    return list(inp.names)


OUT_DIR = "out"


def compile_input(
    inp: HostileInput, backend: str, directory: Path, bounds: Bounds = DEFAULT
) -> Outcome:
    """``policyc compile --backend B`` over the input's files, run in ``directory``.

    nftables prints to stdout; iptables writes ``-o out/`` (ipset.restore,
    iptables.rules, ip6tables.rules, ebtables.rules), the documented files.
    """
    names = write_input(inp, directory)
    argv = [POLICYC, "compile", "--backend", backend, *inp.args]
    if backend == "iptables":
        argv += ["--output-dir", OUT_DIR + "/"]
    return run([*argv, *names], cwd=directory, bounds=bounds)


def apply_input(
    inp: HostileInput, backend: str, directory: Path, netns: str, bounds: Bounds = DEFAULT
) -> Outcome:
    """``policyc apply --backend B`` inside ``netns``."""
    names = write_input(inp, directory)
    # Every generated cluster has Node node-1 (clusters.py); apply refuses to
    # run without --node, and on an input with no objects (issue 11).
    node = () if "--node" in inp.args else ("--node", "node-1", "--allow-empty")
    argv = [POLICYC, "apply", "--backend", backend, *node, *inp.args, *names]
    return run(argv, cwd=directory, netns=netns, bounds=bounds)
