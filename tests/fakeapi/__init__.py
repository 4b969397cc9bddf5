"""A fake Kubernetes API server (list/watch protocol) for driving the real client in tests."""

from .client import api_client, configuration, write_kubeconfig
from .events import WatchExpired
from .handler import RequestRecord
from .resources import APIError
from .server import FakeAPIServer

__all__ = [
    "APIError",
    "FakeAPIServer",
    "RequestRecord",
    "WatchExpired",
    "api_client",
    "configuration",
    "write_kubeconfig",
]
