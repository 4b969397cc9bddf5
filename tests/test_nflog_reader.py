"""``watcher.nflog.UlogdReader`` with a stand-in for ulogd (no root, no
kernel): it connects to the reader's socket as ulogd's JSON plugin does."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from watcher.nflog import NflogPacket, UlogdReader

FAKE_ULOGD = """#!{python}
import re, socket, sys, time
conf = open(sys.argv[2]).read()
sock = re.search(r'file="([^"]+json.sock)"', conf).group(1)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
s.sendall(b'{{"oob.prefix": "pc:drop:I:in4_x", "src_ip": "10.244.1.13", '
          b'"dest_ip": "10.244.1.10", "ip.protocol": 6, "src_port": 4000, "dest_port": 80}}\\n')
time.sleep(60)
"""


def test_stop_ends_ulogd_and_removes_its_run_directory(tmp_path: Path) -> None:
    """After ``stop()`` nothing is left: no process, no config, log or
    socket under /tmp (each agent run left a policyc-ulogd-* directory)."""
    fake = tmp_path / "ulogd"
    fake.write_text(FAKE_ULOGD.format(python=sys.executable))
    fake.chmod(0o755)
    got: list[NflogPacket] = []
    reader = UlogdReader(7, got.append, binary=str(fake))
    reader.start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(p.saddr, p.dport) for p in got] == [("10.244.1.13", 80)]
    proc, rundir = reader.proc, reader.rundir
    assert proc is not None and os.path.isdir(rundir)
    reader.stop()
    assert proc.poll() is not None
    assert not os.path.exists(rundir)
    assert reader.thread is not None and not reader.thread.is_alive()


def test_each_restart_of_ulogd_is_counted(tmp_path: Path) -> None:
    """A ulogd that ends after its line is restarted, and each restart goes
    to ``on_restart`` (the agent's policyc_droplog_reader_restarts_total)."""
    from watcher.metrics import Metrics

    fake = tmp_path / "ulogd"
    fake.write_text(FAKE_ULOGD.replace("time.sleep(60)", "").format(python=sys.executable))
    fake.chmod(0o755)
    m = Metrics()
    reader = UlogdReader(7, lambda p: None, binary=str(fake), on_restart=m.reader_restarts.inc)
    reader.start()
    deadline = time.monotonic() + 20
    while reader.restarts < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    reader.stop()
    assert reader.restarts >= 2
    text = m.render().decode()
    assert f"\npolicyc_droplog_reader_restarts_total {float(reader.restarts)}\n" in text


def test_a_given_run_directory_is_left_in_place(tmp_path: Path) -> None:
    reader = UlogdReader(7, lambda p: None, binary="/nonexistent/ulogd", rundir=str(tmp_path))
    reader.stop()
    assert tmp_path.is_dir()
