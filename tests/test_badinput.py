"""The malformed-input corpus: every file in tests/badinput/ must be refused.

Each file carries its expectation in one or more header lines (JSON files in a
sidecar ``<name>.expect``)::

    # expect: <line>:<col>: <Kind ns/name>: <field path>: <substring of message>

For YAML syntax errors the object and field parts are absent.  Everything up
to the last ``": "`` must match the error line exactly; the rest must occur in
the message.  The CLI must exit 2, print one error line per expectation (in
that order) and emit nothing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from policyc.cli import main
from policyc.model import Direction, NetworkPolicy, Protocol
from policyc.pipeline import read_cluster

BADINPUT = Path(__file__).resolve().parent / "badinput"
CASES = sorted(p for p in BADINPUT.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
POLICYC = Path(sys.executable).parent / "policyc"
EXPECT = "# expect:"


def expectations(path: Path) -> list[str]:
    source = path.with_suffix(".expect") if path.suffix == ".json" else path
    return [
        line.removeprefix(EXPECT).strip()
        for line in source.read_text(encoding="utf-8").splitlines()
        if line.startswith(EXPECT)
    ]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("policyc: error: ")]


def assert_matches(line: str, file: str, expected: str) -> None:
    head, _, message = expected.rpartition(": ")
    prefix = f"policyc: error: {file}:{head}: "
    assert line.startswith(prefix), f"\n got: {line}\nwant: {prefix}...{message}..."
    assert message in line[len(prefix) :], f"\n got: {line}\nwant: ...{message}..."


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --- the corpus -------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30


def test_every_case_has_an_expectation() -> None:
    missing = [p.name for p in CASES if not expectations(p)]
    assert not missing, f"no '{EXPECT}' header: {missing}"


def test_no_orphan_sidecars() -> None:
    jsons = {p.stem for p in BADINPUT.glob("*.json")}
    orphans = [p.name for p in BADINPUT.glob("*.expect") if p.stem not in jsons]
    assert not orphans


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_bad_input(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = expectations(path)
    code, out, err = run(["compile", str(path)], capsys)
    assert code == 2, err
    assert out == "", "nothing may be emitted for bad input"
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == len(expected), "\n" + err
    for line, want in zip(lines, expected, strict=True):
        assert_matches(line, str(path), want)


@pytest.mark.parametrize("name", ["endport-below-port.yaml", "list-bad-item.yaml", "bad-port.json"])
def test_bad_input_writes_no_output_file(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.nft"
    code, out, _ = run(["compile", "--output-file", str(target), str(BADINPUT / name)], capsys)
    assert code == 2
    assert out == ""
    assert not target.exists()


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_bad_input_same_for_every_backend(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = BADINPUT / "except-ipv6-in-ipv4.yaml"
    code, out, err = run(["compile", "--backend", backend, str(path)], capsys)
    assert (code, out) == (2, "")
    assert_matches(error_lines(err)[0], str(path), expectations(path)[0])


def test_bad_file_in_a_directory_names_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (BADINPUT / "endport-below-port.yaml").read_text()
    good = good.replace("8999", "9001").replace("name: web", "name: web-ok")
    write(tmp_path, "a-good.yaml", good)
    bad = write(tmp_path, "b-bad.yaml", (BADINPUT / "endport-below-port.yaml").read_text())
    code, out, err = run(["compile", str(tmp_path)], capsys)
    assert (code, out) == (2, "")
    (line,) = error_lines(err)
    assert_matches(line, str(bad), expectations(BADINPUT / "endport-below-port.yaml")[0])


# --- the real executable ----------------------------------------------------

needs_cli = pytest.mark.skipif(not POLICYC.exists(), reason=f"{POLICYC} not installed")


@needs_cli
@pytest.mark.parametrize("name", ["yaml-syntax-error.yaml", "multidoc-second-bad.yaml"])
def test_subprocess_exit_code(name: str) -> None:
    path = BADINPUT / name
    proc = subprocess.run(
        [str(POLICYC), "compile", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert_matches(line, str(path), expectations(path)[0])


@needs_cli
def test_subprocess_stdin() -> None:
    path = BADINPUT / "bad-port.json"
    proc = subprocess.run(
        [str(POLICYC), "compile", "-"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert_matches(line, "<stdin>", expectations(path)[0])


# --- several errors ---------------------------------------------------------

MANY_ERRORS = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    spec:
      policyTypes: [Ingress, Sideways]
      podSelector:
        matchExpressions:
        - key: app
          operator: In
      ingress:
      - from:
        - {}
        ports:
        - port: 0
    metadata:
      name: web
      namespace: team-a
      labels:
        bad label: x
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: Web
      namespace: team-a
    status:
      podIPs:
      - ip: 10.0.0.1/32
"""


def test_all_errors_reported_sorted_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "many.yaml", MANY_ERRORS)
    code, out, err = run(["compile", str(path)], capsys)
    assert (code, out) == (2, "")
    lines = error_lines(err)
    f = str(path)
    np, pod = "NetworkPolicy team-a/web", "Pod team-a/Web"
    want = [
        f"4:26: {np}: spec.policyTypes[1]: unsupported value 'Sideways'",
        f"7:7: {np}: spec.podSelector.matchExpressions[0].values: must be specified",
        f"11:7: {np}: spec.ingress[0].from[0]: must specify a peer",
        f"13:7: {np}: spec.ingress[0].ports[0].port: must be between 1 and 65535, inclusive",
        f"18:5: {np}: metadata.labels.bad label: invalid label key 'bad label'",
        f"23:3: {pod}: metadata.name: invalid name 'Web'",
        f"27:5: {pod}: status.podIPs[0].ip: must be a valid IP address (got '10.0.0.1/32')",
    ]
    assert len(lines) == len(want), "\n" + err
    for line, expected in zip(lines, want, strict=True):
        assert_matches(line, f, expected)
    positions = [
        tuple(int(n) for n in line[len(f"policyc: error: {f}:") :].split(":")[:2]) for line in lines
    ]
    assert positions == sorted(positions)


def test_errors_from_several_files_all_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["port-zero.yaml", "empty-peer.yaml", "pod-bad-podip.yaml"]
    for name in names:
        write(tmp_path, name, (BADINPUT / name).read_text())
    code, out, err = run(["compile", *(str(tmp_path / n) for n in reversed(names))], capsys)
    assert (code, out) == (2, "")
    lines = error_lines(err)
    assert len(lines) == 3
    for line, name in zip(lines, sorted(names), strict=True):
        assert_matches(line, str(tmp_path / name), expectations(BADINPUT / name)[0])


# --- valid edge cases that must be accepted ---------------------------------

POLICY_HEAD = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: edge
      namespace: team-a
"""

ACCEPTED = {
    "empty-pod-selector": """
        spec:
          podSelector: {}
    """,
    "empty-ingress-rule": """
        spec:
          podSelector: {}
          ingress: [{}]
    """,
    "empty-from": """
        spec:
          podSelector: {}
          ingress:
          - from: []
            ports: []
    """,
    "named-port-udp": """
        spec:
          podSelector: {}
          ingress:
          - ports:
            - port: dns
              protocol: UDP
    """,
    "endport-equal-port": """
        spec:
          podSelector: {}
          egress:
          - ports:
            - port: 8080
              endPort: 8080
    """,
    "sctp": """
        spec:
          podSelector: {}
          ingress:
          - ports:
            - protocol: SCTP
              port: 3868
    """,
    "ipv6-ipblock": """
        spec:
          podSelector: {}
          egress:
          - to:
            - ipBlock:
                cidr: 2001:db8::/32
                except: [2001:db8:1::/48, "2001:db8:2::/64"]
    """,
    "cidr-host-bits": """
        spec:
          podSelector: {}
          ingress:
          - from:
            - ipBlock:
                cidr: 10.1.2.3/8
                except: [10.1.2.3/16]
    """,
    "empty-label-value": """
          labels:
            tier: ""
        spec:
          podSelector:
            matchLabels:
              tier: ""
          ingress:
          - from:
            - namespaceSelector:
                matchExpressions:
                - key: example.com/env
                  operator: NotIn
                  values: [""]
    """,
    "policy-types-duplicate-within-two": """
        spec:
          podSelector: {}
          policyTypes: [Ingress, Ingress]
    """,
    "policy-types-empty": """
        spec:
          podSelector: {}
          policyTypes: []
          egress: [{}]
    """,
    "no-spec": """
        status: {}
    """,
    "no-pod-selector": """
        spec:
          ingress: [{}]
    """,
    "kubectl-get-metadata": """
          uid: 6f1c1f5e-3c1b-4a8e-9a51-0b6f0b3f2d11
          resourceVersion: "4711"
          generation: 1
          creationTimestamp: "2024-01-01T00:00:00Z"
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: "{}"
          managedFields: []
        spec:
          podSelector:
            matchExpressions:
            - {key: app, operator: Exists}
            - {key: tier, operator: DoesNotExist}
          ingress:
          - from:
            - namespaceSelector: {}
              podSelector: {matchLabels: {app: web}}
    """,
}

OTHER_OBJECTS = {
    "pod-host-network": """
        apiVersion: v1
        kind: Pod
        metadata:
          name: agent
          namespace: kube-system
          labels:
            app: ""
        spec:
          hostNetwork: true
          nodeName: node-1
          containers:
          - name: agent
            image: agent
            ports:
            - containerPort: 9100
              name: metrics
            - containerPort: 53
              protocol: UDP
        status:
          podIP: 192.0.2.10
          podIPs:
          - ip: 192.0.2.10
    """,
    "node-hostname-address": """
        apiVersion: v1
        kind: Node
        metadata:
          name: node-1.example.com
        spec:
          podCIDR: 10.244.1.0/24
        status:
          addresses:
          - type: Hostname
            address: node-1.example.com
          - type: InternalIP
            address: 192.0.2.10
          - type: InternalDNS
            address: node-1.internal
    """,
}


def policy_text(body: str) -> str:
    return textwrap.dedent(POLICY_HEAD).lstrip("\n") + textwrap.dedent(body).lstrip("\n")


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_policy(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"{name}.yaml", policy_text(ACCEPTED[name]))
    code, _, err = run(["compile", str(path)], capsys)
    assert code == 0, err
    assert not error_lines(err)


@pytest.mark.parametrize("name", sorted(OTHER_OBJECTS))
def test_accepted_object(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"{name}.yaml", OTHER_OBJECTS[name])
    code, _, err = run(["compile", str(path)], capsys)
    assert code == 0, err
    assert not error_lines(err)


def read_policy(tmp_path: Path, name: str) -> NetworkPolicy:
    path = write(tmp_path, f"{name}.yaml", policy_text(ACCEPTED[name]))
    (policy,) = read_cluster([str(path)]).policies
    return policy


def test_accepted_values_reach_the_model(tmp_path: Path) -> None:
    (rule,) = read_policy(tmp_path, "named-port-udp").ingress
    assert rule.ports is not None and rule.ports[0].protocol is Protocol.UDP
    assert rule.ports[0].port == "dns"

    (rule,) = read_policy(tmp_path, "endport-equal-port").egress
    assert rule.ports is not None and (rule.ports[0].port, rule.ports[0].end_port) == (8080, 8080)

    (rule,) = read_policy(tmp_path, "sctp").ingress
    assert rule.ports is not None and rule.ports[0].protocol is Protocol.SCTP

    (rule,) = read_policy(tmp_path, "cidr-host-bits").ingress
    assert rule.peers is not None
    block = rule.peers[0].ip_block
    assert block is not None
    assert str(block.cidr) == "10.0.0.0/8"
    assert [str(e) for e in block.excepts] == ["10.1.0.0/16"]

    (rule,) = read_policy(tmp_path, "ipv6-ipblock").egress
    assert rule.peers is not None and rule.peers[0].ip_block is not None
    assert [str(e) for e in rule.peers[0].ip_block.excepts] == [
        "2001:db8:1::/48",
        "2001:db8:2::/64",
    ]

    # Empty from/ports and an empty rule all mean "everything".
    (rule,) = read_policy(tmp_path, "empty-from").ingress
    assert (rule.peers, rule.ports) == (None, None)
    (rule,) = read_policy(tmp_path, "empty-ingress-rule").ingress
    assert (rule.peers, rule.ports) == (None, None)

    policy = read_policy(tmp_path, "empty-label-value")
    assert policy.pod_selector.matches({"tier": ""})
    assert not policy.pod_selector.matches({"tier": "db"})

    assert read_policy(tmp_path, "policy-types-duplicate-within-two").policy_types == {
        Direction.INGRESS
    }
    assert read_policy(tmp_path, "policy-types-empty").policy_types == {
        Direction.INGRESS,
        Direction.EGRESS,
    }
    policy = read_policy(tmp_path, "no-spec")
    assert policy.policy_types == {Direction.INGRESS}
    assert policy.ingress == () and not policy.pod_selector.requirements


def test_accepted_pod_and_node(tmp_path: Path) -> None:
    paths = [write(tmp_path, f"{n}.yaml", t) for n, t in OTHER_OBJECTS.items()]
    cluster = read_cluster([str(p) for p in paths])
    (pod,) = cluster.pods
    assert pod.host_network and [str(ip) for ip in pod.ips] == ["192.0.2.10"]
    assert pod.label_map == {"app": ""}
    assert {(p.port, p.protocol) for p in pod.ports} == {
        (9100, Protocol.TCP),
        (53, Protocol.UDP),
    }
    node = cluster.nodes["node-1.example.com"]
    assert [str(a) for a in node.addresses] == ["192.0.2.10"]
    assert [str(c) for c in node.pod_cidrs] == ["10.244.1.0/24"]


def test_tab_indented_json_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (BADINPUT / "tab-indented.json").read_text().replace("10.0.1.0/28", "10.0.0.16/28")
    assert "\t" in text
    path = write(tmp_path, "tabs.json", text)
    code, _, err = run(["compile", str(path)], capsys)
    assert code == 0, err
