"""Shared pytest options: ``--update-golden`` rewrites fixtures/<case>/expected.*."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite fixtures/<case>/expected.nft and expected.iptables from the compiler",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


from tests.kernel.fixtures import clean_lab, kernel_required, lab  # noqa: E402,F401

# Tests that build network namespaces, probe, or run agents: they run one
# after another, in collection order, on one xdist worker, so their fixed
# ports, labs and timing stay as in one process; the CPU-bound unit tests
# fill the other core meanwhile (``-n 2`` in pyproject.toml).
KERNEL_PATHS = ("tests/kernel/", "tests/cni/", "tests/hostile/", "tests/test_netlab.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scheduler, with every kernel test in one work unit.  (Its
    ``--dist loadgroup`` marks the group on ``item._nodeid``, which pytest 9
    no longer reads, so the group never reached the scheduler.)"""
    from xdist.scheduler import LoadScopeScheduling

    class KernelTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "kernel" if nodeid.startswith(KERNEL_PATHS) else nodeid

    return KernelTogether(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its figures to the controller."""
    from tests.support.figures import STATS

    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        out["policyc_figures"] = dict(STATS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller adds up every worker's figures."""
    from tests.support.figures import count

    for key, n in getattr(node, "workeroutput", {}).get("policyc_figures", {}).items():
        count(key, n)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support.figures import STATS

    if STATS:
        figures = ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()))
        terminalreporter.write_line(f"policyc figures: {figures}")
