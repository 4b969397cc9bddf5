from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.cni import helpers


@pytest.fixture
def kernel() -> None:
    helpers.require_kernel()


@pytest.fixture
def net(kernel: None) -> Iterator[helpers.Net]:
    node = helpers.unique("n")
    data = tempfile.mkdtemp(prefix="policyc-cni-")
    helpers.netns_add(node)
    try:
        yield helpers.Net(node=node, data_dir=data)
    finally:
        helpers.netns_del(node)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def pods(kernel: None) -> Iterator[list[str]]:
    """Call pods.append(name) after netns_add; all are deleted at the end."""
    made: list[str] = []
    try:
        yield made
    finally:
        if made:
            helpers.netns_del(*made)


def new_pods(made: list[str], n: int = 1) -> list[str]:
    names = [helpers.unique("p") for _ in range(n)]
    made.extend(names)
    helpers.netns_add(*names)
    return names
