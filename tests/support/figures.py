"""Figures the tests count (cells probed, verdicts compared, ...); the
terminal summary in ``tests/conftest.py`` prints them after the run."""

from __future__ import annotations

STATS: dict[str, int] = {}


def count(key: str, n: int = 1) -> None:
    STATS[key] = STATS.get(key, 0) + n
