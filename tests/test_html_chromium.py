"""The HTML pages of `matrix -o html` and `graph -o html` (issue 11,
deliverable 11): self-contained (no URL to fetch), and in headless Chromium
the table and the graph render, their script runs, and the console stays
empty.

Chromium (Debian's ``chromium``) is driven on the command line:
``--dump-dom`` gives the DOM after the page's script ran, ``--screenshot``
a PNG, and ``--enable-logging=stderr`` prints every console message as
``INFO:CONSOLE`` (a control page with a deliberate error proves it does).
Name resolution is mapped to nothing, so a page that tried to fetch
anything would also log a load error.  Set POLICYC_SCREENSHOT_DIR to keep
the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from policyc.cli import main

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
SHOWCASE = [
    "endport-range",
    "egress-ipv6-block",
    "ipblock-except",
    "match-expressions",
    "multi-policy-union",
    "named-ports",
    "namespace-selector",
]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
# Anything the browser could fetch: a URL in an attribute or in CSS.
FETCHES = re.compile(
    r"""(src|href|action)\s*=\s*["']?[a-z]+:|url\(|@import|//[a-z0-9.-]+\.[a-z]""", re.I
)

if CHROMIUM is None and not os.environ.get("POLICYC_REQUIRE_KERNEL"):
    pytest.skip("chromium is not installed (scripts/bootstrap.sh)", allow_module_level=True)


def chromium(page: Path, *action: str, profile: Path) -> tuple[str, list[str]]:
    """Run headless Chromium on ``page``; (stdout, console lines)."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # we run as root in CI
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1000",
            *action,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base cluster with the policies of several golden cases."""
    d = tmp_path_factory.mktemp("showcase")
    shutil.copy(ROOT / "_base" / "cluster.yaml", d / "cluster.yaml")
    for case in SHOWCASE:
        shutil.copy(ROOT / case / "policy.yaml", d / f"{case}.yaml")
    return d


def render(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    text = capsys.readouterr().out
    out.write_text(text)
    return text


def keep(png: Path) -> None:
    where = os.environ.get("POLICYC_SCREENSHOT_DIR")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(where) / png.name)


def test_console_errors_are_seen(tmp_path: Path) -> None:
    """The control: a page that errs shows up in the console lines."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>nosuchfunction();</script>")
    _, console = chromium(page, "--dump-dom", profile=tmp_path / "profile")
    assert any("nosuchfunction is not defined" in line for line in console)


def test_matrix_page(showcase: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "matrix.html"
    html = render(["matrix", "-o", "html", str(showcase)], page, capsys)
    assert not FETCHES.search(html)
    dom, console = chromium(page, "--dump-dom", profile=tmp_path / "profile")
    assert console == []
    assert 'data-ready="1"' in dom
    assert re.search(r'<div id="summary">81 cells: \. \d+, 4 \d+, 6 \d+, X \d+</div>', dom), dom[
        :500
    ]
    assert dom.count("<td class=") == 81 + 6  # the cells and the legend
    png = tmp_path / "matrix.png"
    _, console = chromium(page, f"--screenshot={png}", profile=tmp_path / "profile")
    assert console == [] and png.stat().st_size > 10_000
    keep(png)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_graph_page(showcase: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "graph.html"
    html = render(["graph", "-o", "html", str(showcase)], page, capsys)
    assert not FETCHES.search(html) and "http" not in html
    dom, console = chromium(page, "--dump-dom", profile=tmp_path / "profile")
    assert console == []
    assert 'data-ready="1"' in dom and "<svg" in dom
    found = re.search(r'<div id="summary">(\d+) nodes, (\d+) edges', dom)
    assert found and int(found[1]) > 20 and int(found[2]) > 20, dom[:500]
    assert "pods: ns[ns in (y)] pod[*]" in dom and "tcp 80-81" in dom
    png = tmp_path / "graph.png"
    _, console = chromium(page, f"--screenshot={png}", profile=tmp_path / "profile")
    assert console == [] and png.stat().st_size > 10_000
    keep(png)
