"""Shared pytest options: ``--update-golden`` rewrites fixtures/<case>/expected.*."""

from __future__ import annotations

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support.figures import STATS

    if STATS:
        figures = ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()))
        terminalreporter.write_line(f"policyc figures: {figures}")
