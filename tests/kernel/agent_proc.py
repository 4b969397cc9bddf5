"""Run ``policyc watch`` as a real process inside a lab namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .world import POLICYC


class AgentProc:
    def __init__(
        self,
        netns: str,
        node: str,
        source_dir: Path,
        port: int,
        *extra: str,
        cni_socket: str = "",
        env: dict[str, str] | None = None,
        cmd: tuple[str, ...] = (POLICYC,),
    ) -> None:
        self.port = port
        self.log = source_dir.parent / f"agent-{node}-{port}.log"
        self.argv = [
            "ip",
            "netns",
            "exec",
            netns,
            *cmd,  # the policyc entry point, or a test wrapper such as tests.support.faulty
            "watch",
            "--node",
            node,
            "--source",
            f"dir:{source_dir}",
            "--listen",
            f"127.0.0.1:{port}",
            "--cni-socket",
            cni_socket,
            "--resync-interval",
            "1",
            *extra,
        ]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.netns = netns

    def start(self, wait_ready: bool = True) -> AgentProc:
        fh = open(self.log, "ab")  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=fh, env=self.env)
        if wait_ready:
            self.wait_ready()
        return self

    def get(self, path: str) -> tuple[int, str]:
        # The endpoint listens on the node netns' loopback: ask from inside it.
        proc = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                "python3",
                "-c",
                "import sys,urllib.request,urllib.error\n"
                f"try:\n r=urllib.request.urlopen('http://127.0.0.1:{self.port}{path}',timeout=2)\n"
                " print(r.status); sys.stdout.write(r.read().decode())\n"
                "except urllib.error.HTTPError as e:\n print(e.code)\n"
                "except Exception:\n print(0)\n",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        first, _, rest = proc.stdout.partition("\n")
        return int(first or 0), rest

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.logs()}")
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"agent not ready after {timeout}s:\n{self.logs()}")

    def metric(self, name: str) -> float:
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def send(self, sig: int) -> None:
        assert self.proc is not None
        # ip netns exec execs the agent: the pid is the agent's.
        os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.send(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
