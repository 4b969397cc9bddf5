"""Read the kernel's NFLOG packets through ulogd2 (its JSON output).

    kernel: log group N (nft) / -j NFLOG --nflog-group N (iptables)
      -> ulogd (child of the agent, same network namespace)
         stack log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON
      -> JSON lines on a unix stream socket the agent listens on
      -> ``NflogPacket`` values to a callback

NFLOG is asynchronous: the kernel copies the packet's headers to a netlink
multicast group and the packet goes on to its verdict at once; a slow or
absent reader loses log lines (the kernel drops them when the socket's
buffer is full), never packets.  ulogd is a well-kept netfilter.org
component, so no netlink parser of ours is needed (docs/observability.md).

ulogd's JSON plugin connects once at start-up and does not reconnect, so
the agent listens first, then starts ulogd, and restarts it (with backoff)
when the connection ends.
"""

from __future__ import annotations

import ctypes
import glob
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("policyc.watch")

PLUGINS = "/usr/lib/x86_64-linux-gnu/ulogd"  # Debian's multiarch path on amd64
STACK = "log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON"
DEFAULT_GROUP = 7  # group 0 is conntrack's (ulogd.conf: "Group O is used by the kernel")


@dataclass(frozen=True, slots=True)
class NflogPacket:
    """One logged packet: ``ts`` in seconds since the epoch, ``family`` 4 or 6,
    ``proto`` the IP protocol number; ports 0 when the protocol has none."""

    ts: float
    prefix: str
    family: int
    proto: int
    saddr: str
    daddr: str
    sport: int
    dport: int


def parse_line(line: str | bytes) -> NflogPacket | None:
    """A ulogd JSON line -> NflogPacket; None for a line that is not a
    packet ulogd decoded (no addresses)."""
    try:
        d = json.loads(line)
    except ValueError:
        return None
    if not isinstance(d, dict) or "src_ip" not in d or "dest_ip" not in d:
        return None
    ts = float(d.get("oob.time.sec", 0)) + float(d.get("oob.time.usec", 0)) / 1e6
    return NflogPacket(
        ts=ts or time.time(),
        prefix=str(d.get("oob.prefix", "")),
        family=6 if d.get("oob.family") == 10 else 4,
        proto=int(d.get("ip.protocol", 0)),
        saddr=str(d["src_ip"]),
        daddr=str(d["dest_ip"]),
        sport=int(d.get("src_port", 0) or 0),
        dport=int(d.get("dest_port", 0) or 0),
    )


def plugin_dir() -> str:
    """Where ulogd's plugins are: Debian's multiarch directory of this machine."""
    found = sorted(glob.glob("/usr/lib/*/ulogd/ulogd_output_JSON.so"))
    return os.path.dirname(found[0]) if found else PLUGINS


def config(group: int, sock: str, logfile: str, plugins: str | None = None) -> str:
    """ulogd.conf for one NFLOG group whose JSON goes to ``sock``."""
    plugins = plugins or plugin_dir()
    names = (
        "inppkt_NFLOG",
        "raw2packet_BASE",
        "filter_IFINDEX",
        "filter_IP2STR",
        "output_JSON",
    )
    lines = ["[global]", f'logfile="{logfile}"', "loglevel=5"]
    lines += [f'plugin="{plugins}/ulogd_{n}.so"' for n in names]
    lines += [f"stack={STACK}", "", "[log1]", f"group={group}"]
    # Hand packets to ulogd at once rather than batching them for 1 s.
    lines += ["netlink_qthreshold=1", "netlink_qtimeout=1", "netlink_socket_buffer_size=1048576"]
    lines += ["", "[json1]", "sync=1", 'mode="unix"', f'file="{sock}"', ""]
    return "\n".join(lines)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """prctl(2) PR_SET_PDEATHSIG: ulogd gets SIGTERM when the agent dies,
    even by SIGKILL, so no reader outlives its agent (and a restarted agent
    never meets a stale ulogd bound to its NFLOG group)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class UlogdReader:
    """Run ulogd for NFLOG ``group`` and hand each packet to ``on_packet``.

    ``start()`` returns at once; ``stop()`` ends ulogd and the thread.
    RuntimeError from ``start()`` when ulogd is not installed.
    ``on_restart`` is called each time ulogd ended and is to be started
    again (``policyc_droplog_reader_restarts_total``).
    """

    def __init__(
        self,
        group: int,
        on_packet: Callable[[NflogPacket], None],
        binary: str = "ulogd",
        rundir: str | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.group = group
        self.on_packet = on_packet
        self.binary = shutil.which(binary) or binary
        self.own_rundir = rundir is None  # made here: removed by stop()
        self.rundir = rundir or tempfile.mkdtemp(prefix="policyc-ulogd-")
        self.sock_path = os.path.join(self.rundir, "json.sock")
        self.conf_path = os.path.join(self.rundir, "ulogd.conf")
        self.stopping = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.connected = threading.Event()
        self.restarts = 0
        self.on_restart = on_restart
        self.lines = 0
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"{self.binary}: not found (Debian packages ulogd2, ulogd2-json)")
        logfile = os.path.join(self.rundir, "ulogd.log")
        with open(self.conf_path, "w", encoding="utf-8") as fh:
            fh.write(config(self.group, self.sock_path, logfile))
        self.thread = threading.Thread(target=self._run, name="nflog", daemon=True)
        self.thread.start()

    def _listen(self) -> socket.socket:
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.sock_path)
        os.chmod(self.sock_path, 0o600)
        srv.listen(1)
        srv.settimeout(1.0)
        return srv

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [self.binary, "-c", self.conf_path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def _run(self) -> None:
        delay = 0.2
        while not self.stopping.is_set():
            started = time.monotonic()
            self._session()
            if self.stopping.is_set():
                break
            self.restarts += 1
            if self.on_restart is not None:
                self.on_restart()
            delay = 0.2 if time.monotonic() - started > 30 else min(5.0, delay * 2)
            log.warning("nflog reader: ulogd ended; restarting in %.1fs", delay)
            self.stopping.wait(delay)

    def _session(self) -> None:
        """One ulogd process: listen, start it, read until either side ends."""
        srv = self._listen()
        self.proc = self._spawn()
        try:
            conn = self._accept(srv)
            if conn is None:
                return
            self.connected.set()
            with conn, conn.makefile("rb") as stream:
                for line in stream:
                    self.lines += 1
                    pkt = parse_line(line)
                    if pkt is not None:
                        self._deliver(pkt)
        finally:
            self.connected.clear()
            srv.close()
            self._end_proc()

    def _accept(self, srv: socket.socket) -> socket.socket | None:
        while not self.stopping.is_set():
            try:
                conn, _ = srv.accept()
                conn.settimeout(None)
                return conn
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None:
                    log.error("nflog reader: ulogd exited with %s", self.proc.returncode)
                    return None
        return None

    def _deliver(self, pkt: NflogPacket) -> None:
        try:
            self.on_packet(pkt)
        except Exception:  # a bad record must not end the reader
            log.exception("nflog reader: handling a packet failed")

    def _end_proc(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """End ulogd and the thread; remove the run directory (its config,
        log and socket) when this reader made it."""
        self.stopping.set()
        self._end_proc()
        if self.thread is not None:
            self.thread.join(5.0)
        if self.own_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
