"""Real ``kubernetes`` client configuration pointing at a :class:`FakeAPIServer`."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client


def configuration(url: str) -> client.Configuration:
    """A Configuration for ``url`` with no auth and no proxy (even if the environment has one)."""
    cfg = client.Configuration(host=url, proxy="")
    cfg.verify_ssl = False
    return cfg


def api_client(url: str) -> client.ApiClient:
    """An ApiClient talking plain HTTP to ``url``; close it (or use ``with``) when done."""
    return client.ApiClient(configuration(url))


def write_kubeconfig(
    url: str, path: str | Path, *, context: str = "fakeapi", namespace: str = "default"
) -> Path:
    """Write a kubeconfig whose current context points at ``url`` without credentials.

    ``kubernetes.config.load_kube_config(config_file=path)`` honours proxy environment
    variables; keep ``NO_PROXY`` covering 127.0.0.1 when a proxy is set.
    """
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    out = Path(path)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out
