"""Seed header, figures summary and the scratch namespace for the hostile suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.figures import FIGURES
from tests.hostile.netns import fresh_netns
from tests.hostile.seed import SEED, SEED_ENV
from tests.kernel.kernelcheck import require_kernel

FIGURES.seed = SEED


def pytest_report_header() -> str:
    return f"policyc hostile-input seed: {SEED} (reproduce with {SEED_ENV}={SEED})"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if not FIGURES.inputs:
        return
    terminalreporter.write_line(f"policyc hostile figures: {FIGURES.summary()}")
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        path = factory.getbasetemp() / "hostile-figures.json"
        path.write_text(FIGURES.as_json())
        terminalreporter.write_line(f"policyc hostile figures JSON: {path}")


@pytest.fixture(scope="session")
def scratch_netns() -> Iterator[str]:
    """One namespace for ``nft -c``, ``ipset restore`` and the ``--test``
    loads; reset after every check, deleted by name at the end."""
    require_kernel()
    with fresh_netns("check") as name:
        yield name
