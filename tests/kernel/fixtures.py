"""Pytest fixtures for kernel tests.

Import them where pytest can see them, e.g. in ``tests/conftest.py``::

    from tests.kernel.fixtures import clean_lab, kernel_required, lab  # noqa: F401

``lab`` is module-scoped: one standard 9-pod lab (x, y, z x a, b, c; IPv4 and
IPv6; servers on TCP/UDP 80 and 81) per test module, deleted at module end.
Tests that install firewall rules in the node should use ``clean_lab``, which
flushes the node's nftables ruleset and ipsets after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .netlab import Lab, build_standard, require_kernel


@pytest.fixture(scope="session")
def kernel_required() -> None:
    """Skip (or fail, with POLICYC_REQUIRE_KERNEL=1) without root/ip/nft/netns."""
    require_kernel()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_kernel()
    with Lab() as the_lab:
        build_standard(the_lab, ipv6=True)
        yield the_lab


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The module's ``lab``, with the node firewall flushed after the test."""
    yield lab
    lab.flush_firewall()
