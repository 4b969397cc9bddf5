#!/usr/bin/env python3
"""install-cni: the init step of the policyc DaemonSet (see docs/deploy.md).

Runs once per pod start, before the agent, as the ``install-cni`` init container, and
is idempotent: a second run with the same inputs changes nothing on the node.

1. Pod CIDRs: ``POLICYC_POD_CIDRS`` (comma separated) if set, else ``spec.podCIDRs``
   (or ``spec.podCIDR``) of the Node ``NODE_NAME``, read from the API server with the pod's
   service account token.  It waits (up to ``POLICYC_PODCIDR_TIMEOUT`` seconds) until the
   node has been given a range.
2. Sysctls of the node's network namespace (the pod is hostNetwork): loads br_netfilter
   if ``net/bridge`` is missing, sets ``bridge-nf-call-iptables``/``-ip6tables`` (the
   dataplane filters bridged pod traffic in the inet forward hook) and turns on forwarding
   for each family that has a pod CIDR.
3. Host bundle: the CNI plugin is executed by the container runtime *on the host*, where
   the image's files do not exist.  The self-contained interpreter and the plugin's venv
   (``python/`` and ``cni/`` under ``POLICYC_BUNDLE_SRC``) are copied to a new release
   directory under ``POLICYC_BUNDLE_DEST`` and published by swapping one symlink::

       <dest>/releases/<content hash>/{python,cni}
       <dest>/current -> releases/<content hash>
       <dest>/python -> current/python        <dest>/cni -> current/cni

   so ``/opt/policyc/cni/bin/python`` means the same on the host as in the image.
4. Launcher: ``<bin dir>/policyc-cni``, a two-line Python script whose ``#!`` names the
   bundle's interpreter by absolute path (``POLICYC_HOST_PREFIX``/cni/bin/python).
5. Reference plugins that the conflist chains (``portmap``) are copied from
   ``POLICYC_PLUGINS_SRC`` when the host has none; every plugin must then be present.
6. The conflist: the template (``POLICYC_CNI_TEMPLATE``, else the built-in one) with each
   ``"__POD_CIDR_RANGES__"`` string value replaced by one range set per pod CIDR, checked
   with policyc-cni's own config parser when it is importable, written atomically
   (temporary file, fsync, rename) as ``<net dir>/<POLICYC_CNI_CONF_NAME>``.

Every host path is overridable through the environment (``Settings.from_env``), so the
tests run the whole thing against a temporary directory.  Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = "__POD_CIDR_RANGES__"
LAUNCHER = "policyc-cni"
BUNDLE_PARTS = ("python", "cni")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
BRIDGE_NF = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")
FORWARDING = {4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding"}

# Used when no template file is mounted; deploy/policyc.yaml carries the same text in its
# ConfigMap (a test keeps the two equivalent).
DEFAULT_TEMPLATE: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "name": "policyc",
    "plugins": [
        {
            "type": "policyc-cni",
            "bridge": "cni0",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipMasq": False,
            "mtu": 1500,
            "hairpinMode": True,
            "agentSocket": "/run/policyc/cni.sock",
            "ipam": {
                "type": "policyc-host-local",
                "ranges": PLACEHOLDER,
                "dataDir": "/var/lib/cni/networks",
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


class InstallError(Exception):
    """A reason to stop: the init container exits 1 and the kubelet retries it."""


def log(msg: str) -> None:
    print(f"install-cni: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    node_name: str = ""
    pod_cidrs: str = ""  # POLICYC_POD_CIDRS: skips the API when set
    api_url: str = ""
    sa_dir: str = SA_DIR
    podcidr_timeout: float = 600.0
    bin_dir: str = "/host/opt/cni/bin"
    net_dir: str = "/host/etc/cni/net.d"
    conf_name: str = "10-policyc.conflist"
    template: str = "/etc/policyc/cni/cni-conflist-template.json"
    bundle_src: str = "/opt/policyc"  # empty: do not copy a bundle
    bundle_dest: str = "/host/opt/policyc"
    host_prefix: str = "/opt/policyc"  # where bundle_dest is on the host
    plugins_src: str = "/usr/lib/cni"
    proc_sys: str = "/proc/sys"  # empty: leave sysctls alone
    modprobe: str = "modprobe"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        d = cls()

        def get(key: str, default: str) -> str:
            return env.get(key, default)

        api = env.get("POLICYC_API_URL", "")
        if not api and env.get("KUBERNETES_SERVICE_HOST"):
            host = env["KUBERNETES_SERVICE_HOST"]
            if ":" in host:  # IPv6 service address
                host = f"[{host}]"
            api = f"https://{host}:{env.get('KUBERNETES_SERVICE_PORT', '443')}"
        try:
            timeout = float(get("POLICYC_PODCIDR_TIMEOUT", str(d.podcidr_timeout)))
        except ValueError as exc:
            raise InstallError(f"POLICYC_PODCIDR_TIMEOUT: {exc}") from exc
        return cls(
            node_name=get("NODE_NAME", ""),
            pod_cidrs=get("POLICYC_POD_CIDRS", ""),
            api_url=api.rstrip("/"),
            sa_dir=get("POLICYC_SA_DIR", d.sa_dir),
            podcidr_timeout=timeout,
            bin_dir=get("POLICYC_CNI_BIN_DIR", d.bin_dir),
            net_dir=get("POLICYC_CNI_NET_DIR", d.net_dir),
            conf_name=get("POLICYC_CNI_CONF_NAME", d.conf_name),
            template=get("POLICYC_CNI_TEMPLATE", d.template),
            bundle_src=get("POLICYC_BUNDLE_SRC", d.bundle_src),
            bundle_dest=get("POLICYC_BUNDLE_DEST", d.bundle_dest),
            host_prefix=get("POLICYC_HOST_PREFIX", d.host_prefix),
            plugins_src=get("POLICYC_PLUGINS_SRC", d.plugins_src),
            proc_sys=get("POLICYC_PROC_SYS", d.proc_sys),
            modprobe=get("POLICYC_MODPROBE", d.modprobe),
        )


# ----------------------------------------------------------------------------- pod CIDRs
def parse_cidrs(items: Iterable[str]) -> list[IPNet]:
    """Canonical networks, at most one per address family (as the API server allows)."""
    nets: list[IPNet] = []
    for item in items:
        text = item.strip()
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise InstallError(f"invalid pod CIDR {text!r}: {exc}") from exc
        if net.num_addresses < 4:
            raise InstallError(f"pod CIDR {net} is too small to allocate from")
        if any(n.version == net.version for n in nets):
            raise InstallError(f"more than one IPv{net.version} pod CIDR: {nets + [net]}")
        nets.append(net)
    return nets


def node_pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return [str(c) for c in cidrs]


def fetch_node(s: Settings, timeout: float = 10.0) -> dict[str, Any]:
    if not s.api_url:
        raise InstallError("no API server: set KUBERNETES_SERVICE_HOST or POLICYC_API_URL")
    url = f"{s.api_url}/api/v1/nodes/{urllib.parse.quote(s.node_name, safe='')}"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    token_file = os.path.join(s.sa_dir, "token")
    if os.path.exists(token_file):  # re-read every time: projected tokens rotate
        with open(token_file, encoding="utf-8") as fh:
            req.add_header("Authorization", f"Bearer {fh.read().strip()}")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https:"):
        ca = os.path.join(s.sa_dir, "ca.crt")
        ctx = ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    with opener.open(req, timeout=timeout) as resp:
        doc = json.load(resp)
    if not isinstance(doc, dict) or doc.get("kind") != "Node":
        raise InstallError(f"GET {url}: not a Node")
    return doc


def pod_cidrs(
    s: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval: float = 2.0,
) -> list[IPNet]:
    if s.pod_cidrs.strip():
        nets = parse_cidrs(s.pod_cidrs.split(","))
        log(f"pod CIDRs from POLICYC_POD_CIDRS: {', '.join(map(str, nets))}")
        return nets
    if not s.node_name:
        raise InstallError("NODE_NAME is not set (and POLICYC_POD_CIDRS is empty)")
    deadline = clock() + s.podcidr_timeout
    last = ""
    while True:
        try:
            cidrs = node_pod_cidrs(fetch_node(s))
            if cidrs:
                nets = parse_cidrs(cidrs)
                log(f"pod CIDRs of node {s.node_name}: {', '.join(map(str, nets))}")
                return nets
            why = f"node {s.node_name} has no spec.podCIDRs yet"
        except urllib.error.HTTPError as exc:
            why = f"GET node {s.node_name}: HTTP {exc.code} {exc.reason}"
        except (OSError, ValueError) as exc:  # URLError, timeouts, bad JSON
            why = f"GET node {s.node_name}: {exc}"
        if clock() >= deadline:
            raise InstallError(
                f"{why} after {s.podcidr_timeout:g}s (is kube-controller-manager running with"
                " --allocate-node-cidrs? or set POLICYC_POD_CIDRS)"
            )
        if why != last:
            log(f"{why}; retrying")
            last = why
        sleep(interval)


# ----------------------------------------------------------------------------- sysctls
def ensure_sysctls(root: str, families: set[int], modprobe: str = "modprobe") -> list[str]:
    """Set the node's sysctls; return the keys that were changed."""
    if not os.path.exists(os.path.join(root, BRIDGE_NF[0])):
        log("net.bridge.* is missing: modprobe br_netfilter")
        try:
            subprocess.run([modprobe, "br_netfilter"], check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise InstallError(f"modprobe br_netfilter failed: {exc}") from exc
        if not os.path.exists(os.path.join(root, BRIDGE_NF[0])):
            raise InstallError("br_netfilter is loaded but net.bridge.* is still missing")
    changed = []
    for key in (*BRIDGE_NF, *(FORWARDING[f] for f in sorted(families))):
        path = os.path.join(root, key)
        try:
            with open(path, encoding="ascii") as fh:
                if fh.read().strip() == "1":
                    continue
            with open(path, "w", encoding="ascii") as fh:
                fh.write("1\n")
        except OSError as exc:
            raise InstallError(f"cannot set {key.replace('/', '.')}=1: {exc}") from exc
        changed.append(key.replace("/", "."))
    log(f"sysctls set: {', '.join(changed)}" if changed else "sysctls already set")
    return changed


# ----------------------------------------------------------------------------- files
def write_atomic(path: str, data: bytes, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``data`` in one rename; False (and no write) if unchanged.

    The temporary name starts with a dot and ends in neither .conf, .conflist nor .json,
    so a runtime watching the directory never loads a half-written file."""
    try:
        with open(path, "rb") as fh:
            if fh.read() == data and (os.stat(path).st_mode & 0o7777) == mode:
                return False
    except OSError:
        pass
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return True


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _symlink_atomic(path: str, target: str) -> None:
    if os.path.islink(path) and os.readlink(path) == target:
        return
    if os.path.isdir(path) and not os.path.islink(path):
        aside = f"{path}.replaced-{int(time.time())}"
        log(f"{path} is a directory: moving it to {aside}")
        os.rename(path, aside)
    tmp = f"{path}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- bundle
def tree_digest(root: str, parts: Iterable[str] = BUNDLE_PARTS) -> str:
    """A content id of the bundle: names, sizes, mtimes, modes and symlink targets."""
    h = hashlib.sha256()
    for part in parts:
        top = os.path.join(root, part)
        if not os.path.isdir(top):
            raise InstallError(f"bundle part {top} is missing")
        for dirpath, dirnames, filenames in os.walk(top):  # symlinked dirs are not followed
            dirnames.sort()
            for name in sorted(filenames + dirnames):
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                if os.path.islink(full):
                    what = "-> " + os.readlink(full)
                elif os.path.isdir(full):
                    what = "dir"
                else:
                    what = f"{st.st_size}:{st.st_mtime_ns}"
                rel = os.path.relpath(full, root)
                h.update(f"{rel}\0{st.st_mode:o}\0{what}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def install_bundle(src: str, dest: str, parts: Iterable[str] = BUNDLE_PARTS) -> str:
    """Publish ``src``'s parts as a release under ``dest``; return the release id."""
    parts = tuple(parts)
    rid = tree_digest(src, parts)
    releases = os.path.join(dest, "releases")
    release = os.path.join(releases, rid)
    os.makedirs(releases, exist_ok=True)
    if not os.path.exists(os.path.join(release, ".complete")):
        stage = tempfile.mkdtemp(prefix=f".{rid}.", dir=releases)
        os.chmod(stage, 0o755)
        try:
            for part in parts:
                shutil.copytree(os.path.join(src, part), os.path.join(stage, part), symlinks=True)
            with open(os.path.join(stage, ".complete"), "w", encoding="utf-8") as fh:
                fh.write(rid + "\n")
            shutil.rmtree(release, ignore_errors=True)  # an incomplete earlier copy
            os.rename(stage, release)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        log(f"bundle {rid} copied to {release}")
    current = os.path.join(dest, "current")
    previous = os.path.basename(os.readlink(current)) if os.path.islink(current) else ""
    _symlink_atomic(current, os.path.join("releases", rid))
    for part in parts:
        _symlink_atomic(os.path.join(dest, part), os.path.join("current", part))
    _fsync_dir(dest)
    if previous != rid:
        log(f"bundle {rid} is current" + (f" (was {previous})" if previous else ""))
    # Keep the previous release: a plugin started just before the swap may still read it.
    for name in os.listdir(releases):
        if name not in (rid, previous):
            shutil.rmtree(os.path.join(releases, name), ignore_errors=True)
    return rid


def launcher_text(host_prefix: str) -> str:
    interpreter = os.path.join(host_prefix, "cni", "bin", "python")
    return (
        f"#!{interpreter} -I\n"
        "# policyc-cni launcher, written by policyc's install-cni (deploy/install_cni.py).\n"
        "# The interpreter is the bundle that install-cni copied to the host.\n"
        "from cni.main import main\n"
        "\n"
        "main()\n"
    )


def install_launcher(bin_dir: str, host_prefix: str) -> bool:
    text = launcher_text(host_prefix)
    if len(text.split("\n", 1)[0]) > 127:  # BINPRM_BUF_SIZE of older kernels
        raise InstallError(f"launcher #! line is too long for {host_prefix!r}")
    changed = write_atomic(os.path.join(bin_dir, LAUNCHER), text.encode(), 0o755)
    log(f"{'wrote' if changed else 'unchanged'} {os.path.join(bin_dir, LAUNCHER)}")
    return changed


def install_plugins(conflist: Mapping[str, Any], bin_dir: str, plugins_src: str) -> list[str]:
    """Copy chained reference plugins the host lacks; fail if any is still missing."""
    copied = []
    for plugin in conflist["plugins"]:
        ptype = str(plugin["type"])
        if ptype == LAUNCHER:
            continue
        dst = os.path.join(bin_dir, ptype)
        src = os.path.join(plugins_src, ptype)
        if not os.path.exists(dst) and plugins_src and os.path.isfile(src):
            with open(src, "rb") as fh:
                write_atomic(dst, fh.read(), 0o755)
            copied.append(ptype)
            log(f"copied {src} to {dst}")
        if not os.access(dst, os.X_OK):
            raise InstallError(f"the conflist chains {ptype!r}, which is not in {bin_dir}")
    return copied


# ----------------------------------------------------------------------------- conflist
def load_template(path: str) -> dict[str, Any]:
    if path and os.path.exists(path):
        if not os.path.isfile(path):
            raise InstallError(f"template {path}: not a file")
        with open(path, encoding="utf-8") as fh:
            try:
                doc = json.load(fh)
            except ValueError as exc:
                raise InstallError(f"template {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise InstallError(f"template {path}: not a JSON object")
        return doc
    log(f"no template at {path!r}: using the built-in one")
    return json.loads(json.dumps(DEFAULT_TEMPLATE))


def render_conflist(template: Mapping[str, Any], cidrs: list[IPNet]) -> dict[str, Any]:
    """Substitute the pod CIDR range sets and check the conflist's shape."""
    if not cidrs:
        raise InstallError("no pod CIDRs")
    ranges = [[{"subnet": str(net)}] for net in cidrs]
    found = 0

    def subst(value: Any) -> Any:
        nonlocal found
        if value == PLACEHOLDER:
            found += 1
            return json.loads(json.dumps(ranges))
        if isinstance(value, dict):
            return {k: subst(v) for k, v in value.items()}
        if isinstance(value, list):
            return [subst(v) for v in value]
        return value

    doc = subst(template)
    if not found:
        raise InstallError(f"the template has no {PLACEHOLDER!r} value")
    plugins = doc.get("plugins")
    if not isinstance(doc.get("cniVersion"), str) or not isinstance(doc.get("name"), str):
        raise InstallError("the conflist needs cniVersion and name")
    if (
        not isinstance(plugins, list)
        or not plugins
        or not all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in plugins)
    ):
        raise InstallError("the conflist needs a non-empty plugins list with types")
    if plugins[0]["type"] != LAUNCHER:
        raise InstallError(f"the first plugin must be {LAUNCHER!r}")
    check_with_plugin(doc)
    return doc


def check_with_plugin(doc: Mapping[str, Any]) -> bool:
    """Parse the policyc-cni entry as the plugin will, when the plugin is importable."""
    try:
        from cni.config import parse_netconf
        from cni.ipam_hostlocal import parse_rangesets
        from cni.spec import CNIError
    except ImportError:
        return False
    for plugin in doc["plugins"]:
        if plugin["type"] != LAUNCHER:
            continue
        conf = {**plugin, "cniVersion": doc["cniVersion"], "name": doc["name"]}
        try:
            net = parse_netconf(conf, "ADD")
            if net.ipam.get("type") == "policyc-host-local":
                parse_rangesets(net.ipam)
        except CNIError as exc:
            raise InstallError(f"policyc-cni rejects the conflist: {exc.msg}") from exc
    return True


def other_configs(net_dir: str, conf_name: str) -> list[str]:
    """Config files a runtime would pick before ours (libcni takes the first by name)."""
    try:
        names = sorted(os.listdir(net_dir))
    except OSError:
        return []
    exts = (".conf", ".conflist", ".json")
    return [n for n in names if n.endswith(exts) and not n.startswith(".") and n < conf_name]


# ----------------------------------------------------------------------------- main
def run(s: Settings) -> dict[str, Any]:
    cidrs = pod_cidrs(s)
    conflist = render_conflist(load_template(s.template), cidrs)
    if s.proc_sys:
        ensure_sysctls(s.proc_sys, {n.version for n in cidrs}, s.modprobe)
    if s.bundle_src:
        install_bundle(s.bundle_src, s.bundle_dest)
    install_launcher(s.bin_dir, s.host_prefix)
    install_plugins(conflist, s.bin_dir, s.plugins_src)
    text = json.dumps(conflist, indent=2) + "\n"
    path = os.path.join(s.net_dir, s.conf_name)
    changed = write_atomic(path, text.encode(), 0o644)
    log(f"{'wrote' if changed else 'unchanged'} {path}")
    for name in other_configs(s.net_dir, s.conf_name):
        log(f"warning: {name} sorts before {s.conf_name}; the runtime will use it instead")
    return conflist


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(__doc__)
        return 0 if args[0] in ("-h", "--help") else 2
    try:
        run(Settings.from_env(os.environ))
    except (InstallError, OSError) as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
