#!/usr/bin/env bash
# Install everything policyc needs on a fresh Debian machine, as root.
# Idempotent: a second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(python3 python3-venv python3-pip nftables iptables ipset iproute2 libnftables1
          containernetworking-plugins procps graphviz fonts-dejavu-core
          ulogd2 ulogd2-json)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The HTML pages' test (tests/test_html_chromium.py) drives a headless
# Chromium; any chromium already on PATH will do.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    missing+=(chromium)
fi
if ((${#missing[@]})); then
    echo "bootstrap: apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's own interpreter: it links libpython statically and starts ~1.5 ms
# faster than a shared-libpython build (pyenv's), which the CNI plugin's
# launcher pays on every ADD and DEL.  PYTHON=... overrides.
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3
if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.policyc-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi
