"""deploy/: manifests against the Kubernetes OpenAPI schema, privileges, and install-cni.

Schema validation is offline: ``kubernetes-validate`` ships the JSON schemas generated
from each Kubernetes release's OpenAPI document; the ``-strict`` variants forbid unknown
fields (``additionalProperties: false``), so a misspelt or misplaced field fails here as
``kubectl apply --validate=strict`` would fail on a cluster.
"""

from __future__ import annotations

import copy
import http.server
import importlib.util
import ipaddress
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.fakeapi import FakeAPIServer
from tests.fakeapi import objects as o
from watcher.sources.k8s_watch import KIND_SPECS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
INSTALLER = DEPLOY / "install_cni.py"
# Pinned: the oldest minor the manifests promise to work on, and the two after it.
KUBERNETES_VERSIONS = ("1.30.0", "1.31.0", "1.32.0")
HOSTPATHS_REQUIRED = ("/run/netns", "/opt/cni/bin", "/etc/cni/net.d")


def _load_installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_cni", INSTALLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["install_cni"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ic = _load_installer()


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(DEPLOY.glob("*.y*ml")):
        with open(path, encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc:
                    out.append((path.name, doc))
    return out


MANIFESTS = _manifests()


def _one(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in MANIFESTS if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _pod_spec() -> dict[str, Any]:
    return _one("DaemonSet")["spec"]["template"]["spec"]


def _agent() -> dict[str, Any]:
    (agent,) = [c for c in _pod_spec()["containers"] if c["name"] == "policyc"]
    return agent


def _ids(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[1]['kind']}/{item[1]['metadata']['name']}"


# ----------------------------------------------------------------------------- schema
def test_manifest_inventory() -> None:
    kinds = sorted(doc["kind"] for _, doc in MANIFESTS)
    assert kinds == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]
    )
    for _, doc in MANIFESTS:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "kube-system"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("item", MANIFESTS, ids=_ids)
def test_manifest_matches_openapi_schema(item: tuple[str, dict[str, Any]], version: str) -> None:
    _, doc = item
    try:
        validated = kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{_ids(item)} against {version}: {where}: {exc.message}")
    assert validated == version.rsplit(".", 1)[0]  # a schema of exactly this minor was used


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ds: ds["spec"]["template"]["spec"].__setitem__("hostNetwrk", True),
        lambda ds: ds["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "capabilities"
        ].__setitem__("add", "NET_ADMIN"),
        lambda ds: ds["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0].__setitem__(
            "mountPropagaton", "HostToContainer"
        ),
        lambda ds: ds["spec"]["template"]["spec"]["volumes"][0]["hostPath"].__setitem__("type", 7),
    ],
    ids=["unknown-field", "wrong-type", "nested-unknown-field", "bad-hostpath-type"],
)
def test_schema_validation_is_strict(mutate: Any) -> None:
    """Negative control: the validator really rejects what a strict API server rejects."""
    ds = copy.deepcopy(_one("DaemonSet"))
    mutate(ds)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, KUBERNETES_VERSIONS[-1], strict=True)


# ----------------------------------------------------------------------------- RBAC
def test_rbac_is_exactly_read_only_on_the_watched_resources() -> None:
    """Read-only on exactly what the k8s source lists and watches (KIND_SPECS),
    and patch on pods/status (the optional Pod condition)."""
    role = _one("ClusterRole")
    rules = {
        (group, resource): sorted(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert rules == {
        ("", "pods"): ["get", "list", "watch"],
        ("", "namespaces"): ["get", "list", "watch"],
        ("", "nodes"): ["get", "list", "watch"],
        ("networking.k8s.io", "networkpolicies"): ["get", "list", "watch"],
        ("policy.networking.k8s.io", "clusternetworkpolicies"): ["get", "list", "watch"],
        ("policy.networking.k8s.io", "adminnetworkpolicies"): ["get", "list", "watch"],
        ("policy.networking.k8s.io", "baselineadminnetworkpolicies"): ["get", "list", "watch"],
        ("", "pods/status"): ["patch"],  # watch --pod-condition
    }
    rules.pop(("", "pods/status"))  # watch --pod-condition patches it; not watched
    watched = {tuple(spec.path.rsplit("/", 1)) for spec in KIND_SPECS}
    assert {
        (p.removeprefix("/apis/").removeprefix("/api/").split("/")[0], r) for p, r in watched
    } == {("v1" if g == "" else g, r) for g, r in rules}
    assert all(set(r) == {"apiGroups", "resources", "verbs"} for r in role["rules"])
    binding = _one("ClusterRoleBinding")
    sa = _one("ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "kube-system"}
    ]
    assert _pod_spec()["serviceAccountName"] == sa["metadata"]["name"]


# ----------------------------------------------------------------------------- DaemonSet
def test_daemonset_runs_on_every_node_in_the_node_netns() -> None:
    ds = _one("DaemonSet")
    spec = _pod_spec()
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert spec["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in spec["tolerations"]  # every taint, every effect
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_agent_privileges_are_the_documented_ones() -> None:
    sc = _agent()["securityContext"]
    assert "privileged" not in sc or sc["privileged"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sorted(sc["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for cap in sc["capabilities"]["add"]:
        assert f"`{cap}`" in doc, f"docs/deploy.md does not justify {cap}"
    (init,) = _pod_spec()["initContainers"]
    assert init["securityContext"]["privileged"] is True
    assert "`privileged`" in doc


def test_required_host_paths_are_mounted() -> None:
    spec = _pod_spec()
    volumes = {v["name"]: v for v in spec["volumes"]}
    by_path = {v["hostPath"]["path"]: name for name, v in volumes.items() if "hostPath" in v}
    mounts = {
        m["name"]: m for c in spec["containers"] + spec["initContainers"] for m in c["volumeMounts"]
    }
    for path in (*HOSTPATHS_REQUIRED, "/var/lib/cni", "/run/policyc", "/lib/modules"):
        assert path in by_path, f"no hostPath volume for {path}"
        assert by_path[path] in mounts, f"hostPath {path} is not mounted"
    agent_mounts = {m["mountPath"]: m for m in _agent()["volumeMounts"]}
    assert agent_mounts["/run/netns"]["mountPropagation"] == "HostToContainer"
    assert agent_mounts["/lib/modules"]["readOnly"] is True
    assert agent_mounts["/run/policyc"]["name"] == by_path["/run/policyc"]
    assert agent_mounts["/var/lib/cni"]["name"] == by_path["/var/lib/cni"]
    for c in spec["containers"] + spec["initContainers"]:
        for m in c["volumeMounts"]:
            assert m["name"] in volumes, f"{c['name']} mounts undeclared volume {m['name']}"


def test_agent_env_args_and_probes() -> None:
    agent = _agent()
    cm = _one("ConfigMap")
    env = {e["name"]: e for e in agent["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    for e in env.values():
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            assert ref["name"] == cm["metadata"]["name"] and ref["key"] in cm["data"]
    for arg in agent["args"]:
        for var in re.findall(r"\$\((\w+)\)", arg):
            assert var in env, f"{arg} uses undefined $({var})"
    assert "--node=$(NODE_NAME)" in agent["args"]
    assert cm["data"]["backend"] in ("nftables", "iptables")
    host, _, port = cm["data"]["listen"].rpartition(":")
    for name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = agent[name]["httpGet"]
        assert (get["host"], get["path"], get["port"]) == (host, path, int(port))
    assert agent["startupProbe"]["httpGet"]["port"] == int(port)
    for c in _pod_spec()["containers"] + _pod_spec()["initContainers"]:
        res = c["resources"]
        assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}, c["name"]


def test_agent_args_parse_with_the_real_watch_cli() -> None:
    """The DaemonSet's args, with the kubelet's $(VAR) expansion, are valid `policyc watch`."""
    import argparse

    from watcher.main import add_arguments

    agent = _agent()
    cm = _one("ConfigMap")["data"]
    values = {"NODE_NAME": "node-1"}
    for e in agent["env"]:
        if "value" in e:
            values[e["name"]] = e["value"]
        elif "configMapKeyRef" in e["valueFrom"]:
            values[e["name"]] = cm[e["valueFrom"]["configMapKeyRef"]["key"]]
    argv = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in agent["args"]]
    parser = argparse.ArgumentParser(prog="policyc watch", exit_on_error=False)
    add_arguments(parser)
    args = parser.parse_args(argv)
    assert (args.node, args.backend, args.listen) == ("node-1", cm["backend"], cm["listen"])
    assert args.source == "k8s" and args.kubeconfig is None  # in-cluster config
    # The agent's CNI socket is on the shared host path and is what the conflist names.
    mounts = {m["mountPath"] for m in agent["volumeMounts"]}
    assert os.path.dirname(args.cni_socket) in mounts
    template = json.loads(cm["cni-conflist-template.json"])
    assert template["plugins"][0]["agentSocket"] == args.cni_socket


def test_init_container_runs_the_installer_shipped_in_the_image() -> None:
    (init,) = _pod_spec()["initContainers"]
    cmd = init["command"]
    assert cmd[0] == "/opt/policyc/venv/bin/python"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert f"COPY deploy/install_cni.py {cmd[1]}" in dockerfile
    env = {e["name"]: e for e in init["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    # Each target the installer writes is the matching host directory.
    for var, host in (
        ("POLICYC_CNI_BIN_DIR", "/opt/cni/bin"),
        ("POLICYC_CNI_NET_DIR", "/etc/cni/net.d"),
        ("POLICYC_BUNDLE_DEST", "/opt/policyc"),
    ):
        assert volumes[mounts[env[var]["value"]]]["hostPath"]["path"] == host
    template_dir, template_name = os.path.split(env["POLICYC_CNI_TEMPLATE"]["value"])
    cm_volume = volumes[mounts[template_dir]]["configMap"]
    assert cm_volume["name"] == _one("ConfigMap")["metadata"]["name"]
    assert {"key": template_name, "path": template_name} in cm_volume["items"]


def test_configmap_template_equals_the_builtin_default() -> None:
    template = json.loads(_one("ConfigMap")["data"]["cni-conflist-template.json"])
    assert template == ic.DEFAULT_TEMPLATE


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(f == "debian:bookworm-slim" for f in froms)
    apt = re.search(r"apt-get install ([^&]*)", text, re.S)
    assert apt
    for pkg in ("nftables", "iptables", "ipset", "iproute2", "libnftables1", "ulogd2-json"):
        assert re.search(rf"\b{pkg}\b", apt.group(1)), pkg
    assert "rm -rf /var/lib/apt/lists/*" in text
    assert "-m venv /opt/policyc/venv" in text
    assert re.search(r"/opt/policyc/venv/bin/pip install [^\n]*/src", text)
    (entry,) = re.findall(r"^ENTRYPOINT (.*)$", text, re.M)
    assert json.loads(entry) == ["/opt/policyc/venv/bin/policyc", "watch"]
    # The launcher's interpreter is the bundle's `cni` venv that the installer copies.
    assert "-m venv /opt/policyc/cni" in text
    assert ic.Settings().host_prefix == "/opt/policyc"
    assert set(ic.BUNDLE_PARTS) == {"python", "cni"}


def test_cni_plugin_needs_only_what_the_slim_cni_venv_has() -> None:
    """The Dockerfile's /opt/policyc/cni venv holds policyc (no deps) and pip-nftables."""
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"/opt/policyc/cni/bin/pip install [^\n]*--no-deps /src", dockerfile)
    assert re.search(r"/opt/policyc/cni/bin/pip install [^;]*'pip-nftables", dockerfile)
    assert re.search(r"/opt/policyc/cni/bin/pip install [^;]*'pyroute2", dockerfile)
    code = (
        "import importlib, pkgutil, sys\n"
        "import cni\n"
        "for m in pkgutil.iter_modules(cni.__path__):\n"
        "    importlib.import_module('cni.' + m.name)\n"
        "import cni.nft\n"
        "cni.nft._ctx()\n"  # the lazy `import nftables`
        "cni.netlink.preload()\n"  # the lazy `import pyroute2` (standalone mode)
        "third = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)\n"
        "print(' '.join(sorted(third)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "nftables" in out  # the check does see third-party imports
    # sitecustomize: Debian's interpreter imports /etc/python3.x/sitecustomize.py at start.
    allowed = {
        "cni",
        "policyc",
        "nftables",
        "pyroute2",
        "__main__",
        "__mp_main__",
        "_distutils_hack",
        "sitecustomize",
    }
    extra = {m for m in out if m not in allowed and not m.startswith("__editable__")}
    assert not extra, f"cni imports {extra}: add them to the Dockerfile's cni venv"


# ----------------------------------------------------------------------------- installer
def _settings(tmp: Path, **over: Any) -> Any:
    base = dict(
        node_name="node-1",
        pod_cidrs="10.244.1.0/24",
        api_url="",
        sa_dir=str(tmp / "sa"),
        podcidr_timeout=5.0,
        bin_dir=str(tmp / "host/opt/cni/bin"),
        net_dir=str(tmp / "host/etc/cni/net.d"),
        template=str(tmp / "template.json"),
        bundle_src="",
        bundle_dest=str(tmp / "host/opt/policyc"),
        host_prefix=str(tmp / "host/opt/policyc"),
        plugins_src=str(tmp / "plugins"),
        proc_sys="",
    )
    base.update(over)
    return ic.Settings(**base)


@pytest.fixture
def node_dirs(tmp_path: Path) -> Path:
    """Stand-ins for the host: a reference portmap, the ConfigMap's template, a /proc/sys."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    portmap = plugins / "portmap"
    portmap.write_text("#!/bin/sh\necho portmap\n")
    portmap.chmod(0o755)
    (tmp_path / "template.json").write_text(_one("ConfigMap")["data"]["cni-conflist-template.json"])
    for key in (*ic.BRIDGE_NF, *ic.FORWARDING.values()):
        path = tmp_path / "proc/sys" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0\n")
    return tmp_path


def _read_conflist(s: Any) -> dict[str, Any]:
    with open(os.path.join(s.net_dir, s.conf_name), encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def test_installer_writes_conflist_with_the_node_subnet(node_dirs: Path) -> None:
    s = _settings(node_dirs)
    ic.run(s)
    conf = _read_conflist(s)
    assert conf["cniVersion"] in ("1.0.0", "1.1.0")
    assert [p["type"] for p in conf["plugins"]] == ["policyc-cni", "portmap"]
    ipam = conf["plugins"][0]["ipam"]
    assert ipam["type"] == "policyc-host-local"
    assert ipam["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert conf["plugins"][1]["capabilities"] == {"portMappings": True}
    path = Path(s.net_dir, s.conf_name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(s.net_dir) == [s.conf_name]  # no temporary file left behind
    # The plugin itself accepts the result.
    from cni.config import parse_netconf
    from cni.ipam_hostlocal import parse_rangesets

    entry = {**conf["plugins"][0], "cniVersion": conf["cniVersion"], "name": conf["name"]}
    rangesets = parse_rangesets(parse_netconf(entry, "ADD").ipam)
    assert [str(r.subnet) for rs in rangesets for r in rs] == ["10.244.1.0/24"]
    # The launcher names the bundle's interpreter by absolute path; portmap was copied.
    launcher = Path(s.bin_dir, "policyc-cni")
    assert launcher.read_text().startswith(f"#!{s.host_prefix}/cni/bin/python -I\n")
    assert os.access(launcher, os.X_OK)
    assert Path(s.bin_dir, "portmap").read_text() == "#!/bin/sh\necho portmap\n"


def test_installer_is_idempotent_and_replaces_atomically(node_dirs: Path) -> None:
    s = _settings(node_dirs)
    ic.run(s)
    conf_path = Path(s.net_dir, s.conf_name)
    first = conf_path.stat()
    ic.run(s)
    assert conf_path.stat().st_ino == first.st_ino  # unchanged: not even rewritten
    ic.run(_settings(node_dirs, pod_cidrs="10.244.7.0/24"))
    assert conf_path.stat().st_ino != first.st_ino  # replaced by rename, not edited
    ranges = _read_conflist(s)["plugins"][0]["ipam"]["ranges"]
    assert ranges == [[{"subnet": "10.244.7.0/24"}]]


def test_installer_keeps_an_existing_portmap(node_dirs: Path) -> None:
    s = _settings(node_dirs)
    Path(s.bin_dir).mkdir(parents=True)
    own = Path(s.bin_dir, "portmap")
    own.write_text("#!/bin/sh\necho the host's own\n")
    own.chmod(0o755)
    ic.run(s)
    assert "the host's own" in own.read_text()


def test_installer_dual_stack_and_sysctls(node_dirs: Path) -> None:
    proc = node_dirs / "proc/sys"
    s = _settings(node_dirs, pod_cidrs="fd00:10:244:1::/64, 10.244.1.0/24", proc_sys=str(proc))
    ic.run(s)
    ranges = _read_conflist(s)["plugins"][0]["ipam"]["ranges"]
    assert ranges == [[{"subnet": "fd00:10:244:1::/64"}], [{"subnet": "10.244.1.0/24"}]]
    for key in (*ic.BRIDGE_NF, *ic.FORWARDING.values()):
        assert (proc / key).read_text().strip() == "1", key
    assert ic.ensure_sysctls(str(proc), {4, 6}) == []  # second run: nothing to change


def test_installer_ipv4_only_leaves_ipv6_forwarding_alone(node_dirs: Path) -> None:
    proc = node_dirs / "proc/sys"
    ic.run(_settings(node_dirs, proc_sys=str(proc)))
    assert (proc / ic.FORWARDING[4]).read_text().strip() == "1"
    assert (proc / ic.FORWARDING[6]).read_text().strip() == "0"  # would stop SLAAC on hosts


def test_installer_loads_br_netfilter_when_missing(node_dirs: Path) -> None:
    proc = node_dirs / "proc/sys"
    bridge = proc / "net/bridge"
    for key in ic.BRIDGE_NF:
        (proc / key).unlink()
    fake = node_dirs / "modprobe"
    fake.write_text(
        f'#!/bin/sh\n[ "$1" = br_netfilter ] || exit 3\n'
        f"echo 0 > {bridge}/bridge-nf-call-iptables\necho 0 > {bridge}/bridge-nf-call-ip6tables\n"
    )
    fake.chmod(0o755)
    changed = ic.ensure_sysctls(str(proc), {4}, str(fake))
    assert "net.bridge.bridge-nf-call-iptables" in changed
    for key in ic.BRIDGE_NF:
        (proc / key).unlink()
    with pytest.raises(ic.InstallError, match="br_netfilter"):
        ic.ensure_sysctls(str(proc), {4}, "/bin/true")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"pod_cidrs": "10.244.1.5/24"}, "invalid pod CIDR"),
        ({"pod_cidrs": "10.244.1.0/24,10.245.0.0/16"}, "more than one IPv4"),
        ({"pod_cidrs": "10.244.1.0/31"}, "too small"),
        ({"pod_cidrs": "", "node_name": ""}, "NODE_NAME"),
        ({"plugins_src": ""}, "portmap"),
    ],
)
def test_installer_refuses_bad_input(node_dirs: Path, over: dict[str, Any], message: str) -> None:
    s = _settings(node_dirs, **over)
    with pytest.raises(ic.InstallError, match=message):
        ic.run(s)
    assert not Path(s.net_dir, s.conf_name).exists()


def test_installer_refuses_bad_templates(node_dirs: Path) -> None:
    tpl = node_dirs / "template.json"
    doc = json.loads(tpl.read_text())
    doc["plugins"][0]["ipam"]["ranges"] = [[{"subnet": "10.0.0.0/8"}]]
    tpl.write_text(json.dumps(doc))
    with pytest.raises(ic.InstallError, match="__POD_CIDR_RANGES__"):
        ic.run(_settings(node_dirs))
    doc["plugins"][0]["ipam"]["ranges"] = ic.PLACEHOLDER
    doc["plugins"].reverse()
    tpl.write_text(json.dumps(doc))
    with pytest.raises(ic.InstallError, match="first plugin"):
        ic.run(_settings(node_dirs))
    doc["plugins"].reverse()
    doc["plugins"][0]["mtu"] = 20
    tpl.write_text(json.dumps(doc))
    with pytest.raises(ic.InstallError, match="policyc-cni rejects"):
        ic.run(_settings(node_dirs))
    tpl.write_text("{not json")
    with pytest.raises(ic.InstallError, match="template"):
        ic.run(_settings(node_dirs))


def test_installer_builtin_template_when_none_is_mounted(node_dirs: Path) -> None:
    s = _settings(node_dirs, template=str(node_dirs / "absent.json"))
    ic.run(s)
    assert _read_conflist(s)["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]


# ----------------------------------------------------------------------------- API
def test_installer_reads_pod_cidrs_from_the_node_object(node_dirs: Path) -> None:
    with FakeAPIServer(bookmark_interval=0) as api:
        api.create(o.node("node-1", pod_cidrs=["10.244.3.0/24", "fd00:10:244:3::/64"]))
        s = _settings(node_dirs, pod_cidrs="", api_url=api.url)
        ic.run(s)
        assert any(r.path == "/api/v1/nodes/node-1" and r.verb == "get" for r in api.requests)
    ranges = _read_conflist(s)["plugins"][0]["ipam"]["ranges"]
    assert ranges == [[{"subnet": "10.244.3.0/24"}], [{"subnet": "fd00:10:244:3::/64"}]]


def test_installer_waits_for_the_node_to_get_a_pod_cidr(node_dirs: Path) -> None:
    with FakeAPIServer(bookmark_interval=0) as api:
        s = _settings(node_dirs, pod_cidrs="", api_url=api.url, podcidr_timeout=10.0)

        def later() -> None:
            time.sleep(0.2)
            api.create(o.node("node-1"))  # registered, no range yet
            time.sleep(0.2)
            api.upsert(o.node("node-1", pod_cidrs=["10.244.9.0/24"]))

        t = threading.Thread(target=later)
        t.start()
        nets = ic.pod_cidrs(s, interval=0.05)
        t.join()
    assert nets == [ipaddress.ip_network("10.244.9.0/24")]


def test_installer_gives_up_after_the_timeout(node_dirs: Path) -> None:
    with FakeAPIServer(bookmark_interval=0) as api:
        api.create(o.node("node-1"))
        s = _settings(node_dirs, pod_cidrs="", api_url=api.url, podcidr_timeout=0.3)
        with pytest.raises(ic.InstallError, match="no spec.podCIDRs.*allocate-node-cidrs"):
            ic.run(s)
    assert not Path(s.net_dir, s.conf_name).exists()


def test_installer_sends_the_service_account_token(node_dirs: Path) -> None:
    seen: list[str | None] = []
    node = json.dumps(o.node("node-1", pod_cidrs=["10.244.4.0/24"])).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(node)))
            self.end_headers()
            self.wfile.write(node)

        def log_message(self, *args: Any) -> None:
            pass

    sa = node_dirs / "sa"
    sa.mkdir()
    (sa / "token").write_text("s3cr3t\n")
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        s = _settings(node_dirs, pod_cidrs="", api_url=url)
        assert ic.pod_cidrs(s) == [ipaddress.ip_network("10.244.4.0/24")]
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["Bearer s3cr3t"]


def test_settings_from_env() -> None:
    s = ic.Settings.from_env(
        {
            "KUBERNETES_SERVICE_HOST": "fd00::1",
            "KUBERNETES_SERVICE_PORT": "6443",
            "NODE_NAME": "n",
            "POLICYC_CNI_NET_DIR": "/x",
            "POLICYC_PROC_SYS": "",
        }
    )
    assert s.api_url == "https://[fd00::1]:6443"
    assert (s.node_name, s.net_dir, s.proc_sys) == ("n", "/x", "")
    assert s.bin_dir == "/host/opt/cni/bin" and s.host_prefix == "/opt/policyc"
    explicit = ic.Settings.from_env({"POLICYC_API_URL": "http://127.0.0.1:1/"})
    assert explicit.api_url == "http://127.0.0.1:1"


# ----------------------------------------------------------------------------- bundle
def _fake_bundle(root: Path, marker: str) -> Path:
    """An image's /opt/policyc: python/ and a real venv cni/ that imports this checkout."""
    src = root / "opt/policyc"
    (src / "python/bin").mkdir(parents=True)
    (src / "python/VERSION").write_text(marker)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(src / "cni")
    (site,) = (src / "cni/lib").glob("python3*/site-packages")
    (site / "policyc_checkout.pth").write_text(str(ROOT) + "\n")
    return src


def _env_for(s: Any) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NODE_NAME": s.node_name,
        "POLICYC_POD_CIDRS": s.pod_cidrs,
        "POLICYC_CNI_BIN_DIR": s.bin_dir,
        "POLICYC_CNI_NET_DIR": s.net_dir,
        "POLICYC_CNI_TEMPLATE": s.template,
        "POLICYC_BUNDLE_SRC": s.bundle_src,
        "POLICYC_BUNDLE_DEST": s.bundle_dest,
        "POLICYC_HOST_PREFIX": s.host_prefix,
        "POLICYC_PLUGINS_SRC": s.plugins_src,
        "POLICYC_PROC_SYS": s.proc_sys,
    }


@pytest.fixture
def bundle_node(node_dirs: Path) -> Iterator[tuple[Any, Path]]:
    src = _fake_bundle(node_dirs / "image", "one")
    yield _settings(node_dirs, bundle_src=str(src)), src


def test_installer_script_end_to_end_and_the_launcher_runs(bundle_node: tuple[Any, Path]) -> None:
    s, _ = bundle_node
    run = subprocess.run(
        [sys.executable, str(INSTALLER)],
        env=_env_for(s),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stderr
    dest = Path(s.bundle_dest)
    assert os.readlink(dest / "cni") == "current/cni"
    assert os.readlink(dest / "python") == "current/python"
    assert (dest / "python/VERSION").read_text() == "one"
    # The runtime's view: exec the launcher with CNI_COMMAND=VERSION.
    version = subprocess.run(
        [os.path.join(s.bin_dir, "policyc-cni")],
        input='{"cniVersion": "1.0.0"}',
        capture_output=True,
        text=True,
        timeout=60,
        env={"CNI_COMMAND": "VERSION", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert version.returncode == 0, version.stderr
    reply = json.loads(version.stdout)
    conf = _read_conflist(s)
    assert conf["cniVersion"] in reply["supportedVersions"]
    assert reply["cniVersion"] == "1.0.0"
    # Exit status and message of a failure.
    bad = subprocess.run(
        [sys.executable, str(INSTALLER)],
        env={**_env_for(s), "POLICYC_POD_CIDRS": "bogus"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "invalid pod CIDR 'bogus'" in bad.stderr


def test_bundle_releases_swap_by_symlink(bundle_node: tuple[Any, Path]) -> None:
    s, src = bundle_node
    dest = Path(s.bundle_dest)
    first = ic.install_bundle(str(src), str(dest))
    assert ic.install_bundle(str(src), str(dest)) == first  # same image: nothing copied
    (src / "python/VERSION").write_text("two, longer")
    second = ic.install_bundle(str(src), str(dest))
    assert second != first
    assert os.readlink(dest / "current") == f"releases/{second}"
    assert (dest / "python/VERSION").read_text() == "two, longer"
    assert sorted(os.listdir(dest / "releases")) == sorted([first, second])  # previous kept
    (src / "python/VERSION").write_text("three, longer still")
    third = ic.install_bundle(str(src), str(dest))
    assert sorted(os.listdir(dest / "releases")) == sorted([second, third])  # oldest pruned
    assert (dest / "releases" / third / ".complete").read_text().strip() == third


def test_bundle_replaces_a_plain_directory(bundle_node: tuple[Any, Path]) -> None:
    s, src = bundle_node
    dest = Path(s.bundle_dest)
    (dest / "cni").mkdir(parents=True)  # e.g. left by a manual install
    ic.install_bundle(str(src), str(dest))
    assert os.path.islink(dest / "cni")
    assert [n for n in os.listdir(dest) if n.startswith("cni.replaced-")]


def test_bundle_part_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "src/python").mkdir(parents=True)
    with pytest.raises(ic.InstallError, match="cni"):
        ic.install_bundle(str(tmp_path / "src"), str(tmp_path / "dest"))
