"""The launcher a node installs (cni.install_shim), the client's JSON, the netlink layer."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest

from cni import agent_client, install_shim
from tests.cni.conftest import new_pods
from tests.cni.helpers import (
    CONSOLE_SCRIPT,
    PLUGIN,
    PYTHON,
    ROOT,
    Net,
    agent,
    allocations,
    cni,
    links,
    pod_args,
)

# What the thick path may import beyond a bare `python -I -S`: the package and C modules.
THICK_IMPORTS = {"cni", "cni.main", "cni.agent_client", "_json", "_socket", "posix"}


def test_install_shim_writes_an_isolated_launcher(tmp_path: str) -> None:
    path = install_shim.install(str(tmp_path), PYTHON)
    assert path == os.path.join(str(tmp_path), "policyc-cni")
    with open(path) as fh:
        text = fh.read()
    assert text.splitlines()[0] == f"#!{PYTHON} -IS"  # absolute, the venv's own, no site
    assert repr(ROOT) in text and "site-packages" in text
    assert os.access(path, os.X_OK)
    other = install_shim.install(os.path.join(str(tmp_path), "renamed"), PYTHON)
    assert os.path.basename(other) == "renamed"
    install_shim.install(str(tmp_path), PYTHON)  # replaced in place, no temp files left
    assert sorted(os.listdir(str(tmp_path))) == ["policyc-cni", "renamed"]
    with pytest.raises(SystemExit):
        install_shim.render("/opt/my python/bin/python3")


def test_thick_path_imports_only_c_modules() -> None:
    code = (
        f"import sys; base = set(sys.modules); sys.path.append({ROOT!r}); import cni.main; "
        "print(' '.join(sorted(set(sys.modules) - base)))"
    )
    out = subprocess.run([PYTHON, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) <= THICK_IMPORTS, out.stdout


def test_launcher_ignores_the_callers_python_environment(tmp_path: str) -> None:
    evil = os.path.join(str(tmp_path), "cni")
    os.mkdir(evil)
    with open(os.path.join(evil, "__init__.py"), "w") as fh:
        fh.write("raise SystemExit('shadowed')\n")
    env = {
        "CNI_COMMAND": "VERSION",
        "PYTHONPATH": str(tmp_path),
        "PYTHONHOME": "/nonexistent",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    proc = subprocess.run(
        [PLUGIN], input=b'{"cniVersion": "1.0.0"}', env=env, capture_output=True, cwd=str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cniVersion"] == "1.0.0"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain",
        'quote " back \\ slash',
        "tab\tnl\n\x00\x1f",
        "ünïcødé ☃ 𝄞",
        "\udcff surrogate-escaped byte",
    ],
)
def test_client_json_matches_the_json_module(text: str) -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_ARGS": text, text or "k": "v"}
    doc = json.loads(agent_client.dumps_request(env, text))
    assert doc == {"v": agent_client.PROTOCOL, "env": env, "stdin": text}
    reply = {"code": 7, "stdout": json.dumps({"msg": text, "n": [1, 2.5, None, True, -3e-2]})}
    assert agent_client.loads(json.dumps(reply)) == reply
    assert agent_client.loads("  \n" + json.dumps(reply, indent=2)) == reply
    with pytest.raises(ValueError):
        agent_client.loads('{"code": ')
    with pytest.raises(ValueError):
        agent_client.loads("")


def test_agent_socket_from_config() -> None:
    conf = json.dumps({"cniVersion": "1.0.0", "agentSocket": "/run/x/é.sock"}).encode()
    assert agent_client.socket_path({}, conf) == "/run/x/é.sock"
    assert agent_client.socket_path({"POLICYC_CNI_SOCKET": "/a"}, conf) == "/a"
    assert agent_client.socket_path({}, b'{"agentSocket": 5}') == agent_client.DEFAULT_SOCKET
    assert agent_client.socket_path({}, b"agentSocket{oops") == agent_client.DEFAULT_SOCKET


def test_pip_console_script_still_works(net: Net, pods: list[str]) -> None:
    """Everything else execs the launcher; pip's script must keep working too."""
    a, b = new_pods(pods, 2)
    alone = cni(net, "ADD", pod=a, cid="alone", args=pod_args("x", "a"), exe=CONSOLE_SCRIPT)
    assert alone.code == 0, alone.raw + alone.stderr
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    with agent(net.node, net.socket_path):
        thick = cni(net, "ADD", pod=b, cid="thick", args=pod_args("x", "b"), exe=CONSOLE_SCRIPT)
        assert thick.code == 0, thick.raw + thick.stderr
        assert (
            cni(net, "DEL", pod=b, cid="thick", args=pod_args("x", "b"), exe=CONSOLE_SCRIPT).code
            == 0
        )
    net.socket_path = ""
    assert (
        cni(net, "DEL", pod=a, cid="alone", args=pod_args("x", "a"), exe=CONSOLE_SCRIPT).code == 0
    )
    assert allocations(net) == [] and links(a) == ["lo"] and links(b) == ["lo"]


def test_netlink_batches_report_each_answer(pods: list[str]) -> None:
    from cni import netlink

    (a,) = new_pods(pods)
    with netlink.pod_socket(f"/run/netns/{a}") as sock:

        def missing() -> object:
            return netlink.link_msg(
                netlink.RTM_SETLINK,
                netlink.NLM_F_REQUEST | netlink.NLM_F_ACK,
                [],
                index=99999,
                flags=netlink.IFF_UP,
                change=netlink.IFF_UP,
            )

        (err, none), (ok, replies) = netlink.batch(sock, [missing(), netlink.get_link_msg("lo")])
        assert (err, none, ok) == (errno.ENODEV, [], 0)
        lo = netlink.parse_link(replies[0])
        assert (lo.name, lo.index, lo.mac) == ("lo", 1, "00:00:00:00:00:00")
        assert netlink.find_links(sock, ["lo", "nope0"]) == [lo, None]
        assert [x.name for x in netlink.links(sock)] == ["lo"]
        assert netlink.delete_link(sock, "nope0") is False
        with pytest.raises(netlink.NetlinkError) as exc:
            netlink.request(sock, missing())
        assert exc.value.code == errno.ENODEV
        made, cached = netlink.ensure_bridge(sock, "pctestbr", 1400)
        br = netlink.find_link(sock, "pctestbr")
        assert br is not None and br.kind == "bridge" and br.up and br.mtu == 1400
        assert (made.index, made.mac, cached) == (br.index, br.mac, False)
        assert netlink.ensure_bridge(sock, "pctestbr", 1400) == (made, True)  # per netns
        netlink.add_addresses(sock, br.index, ["10.244.99.1/24", "2001:db8:244:99::1/64"])
        netlink.add_addresses(sock, br.index, ["10.244.99.1/24"])  # EEXIST is fine
        assert netlink.addresses(sock, br.index) >= {"10.244.99.1/24", "2001:db8:244:99::1/64"}
        assert ("10.244.99.0/24", None) in netlink.routes(sock, br.index)
        assert netlink.delete_link(sock, "pctestbr") is True
        # pyroute2's sequence numbers and queues are all released
        assert len(sock.asyncore.msg_queue.queues) == 1
        assert sock.asyncore.msg_queue.root.empty()
    assert links(a) == ["lo"]
