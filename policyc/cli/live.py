"""Read the live cluster for ``--from-cluster``/``--kubeconfig``/``--context``.

The same list calls as the node agent (``watcher.sources.k8s_watch``:
``KIND_SPECS`` and ``list_pages``), through the official ``kubernetes``
client, paginated; the objects come back as the API serves them, the shape
``policyc compile`` reads from a file, and are validated by the same reader.

Hook for more kinds (ClusterNetworkPolicy): a kind appended to
``watcher.sources.k8s_watch.KIND_SPECS`` is listed here too; a kind whose
collection answers 404 (a CRD that is not installed) is skipped with a note.
"""

from __future__ import annotations

import sys
from typing import Any

import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from policyc.errors import InputError, PolicycError, clipped, printable
from policyc.load import RawObject
from watcher.sources.k8s import load_api_client
from watcher.sources.k8s_watch import KIND_SPECS, KindSpec, list_pages

PAGE_SIZE = 500  # items per list request (ListOptions.limit)
TIMEOUT = (10.0, 60.0)  # (connect, read) seconds of each list request
HTTP_NOT_FOUND = 404


def _client(kubeconfig: str | None, context: str | None) -> Any:
    """The API client; InputError (exit 2) for a kubeconfig or context that is
    missing or unusable, as kubectl reports them."""
    try:
        api, _origin = load_api_client(kubeconfig, context=context)
    except ConfigException as exc:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "kubeconfig"
        raise InputError(f"{where}: {clipped(printable(str(exc)))}") from None
    except (
        OSError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        yaml.YAMLError,
    ) as exc:  # malformed YAML
        where = kubeconfig or "kubeconfig"
        raise InputError(f"{where}: cannot use it: {clipped(printable(str(exc)))}") from None
    api.configuration.retries = 1  # one retry, then a message: not urllib3's default three
    return api


def _list_kind(api: Any, spec: KindSpec) -> list[RawObject]:
    items: list[RawObject] = []
    origin = f"{api.configuration.host}{spec.path}"
    for body in list_pages(spec.lister(api), PAGE_SIZE, TIMEOUT):
        for item in body.get("items") or ():
            # Items of a list answer come without kind and apiVersion (the list has its own).
            item.setdefault("apiVersion", spec.api_version)
            item.setdefault("kind", str(spec.kind))
            items.append(RawObject(item, origin))
    return items


def list_cluster(kubeconfig: str | None, context: str | None) -> list[RawObject]:
    """Every object of every kind in KIND_SPECS, cluster-wide.

    Raises InputError for an unusable kubeconfig or context (exit 2) and
    PolicycError when the API server cannot be reached or refuses (exit 1).
    """
    api = _client(kubeconfig, context)
    out: list[RawObject] = []
    with api:
        for spec in KIND_SPECS:
            try:
                out.extend(_list_kind(api, spec))
            except ApiException as exc:
                if exc.status == HTTP_NOT_FOUND and spec.api_version != "v1":
                    print(f"policyc: note: {spec.path}: not served (404), skipped", file=sys.stderr)
                    continue
                raise PolicycError(
                    f"{api.configuration.host}: cannot list {spec.path}: "
                    f"{exc.status} {printable(str(exc.reason))}"
                ) from None
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                raise PolicycError(
                    f"{api.configuration.host}: cannot list {spec.path}: "
                    f"{clipped(printable(str(exc)))}"
                ) from None
    return out
