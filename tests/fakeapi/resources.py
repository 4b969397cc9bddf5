"""Resource table, Status objects and discovery documents of the fake API server.

Everything here is plain data: the shapes follow what a real kube-apiserver serves
(``Status`` on errors, ``APIVersions``/``APIGroupList``/``APIResourceList`` for discovery).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
POLICY_GROUP = "policy.networking.k8s.io"

# The reason a real apiserver puts in a Status for each HTTP code it emits.
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

SERVER_VERSION: JSON = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-fakeapi",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class ResourceType:
    """One served resource (a REST collection) and what its field selectors accept."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    field_labels: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def key(self, namespace: str | None, name: str) -> str:
        """Storage key; sorts like etcd keys (namespace, then name)."""
        return f"{namespace}/{name}" if self.namespaced else name

    def supports_field(self, field: str) -> bool:
        if field in ("metadata.name", "metadata.namespace"):
            return True
        return field in self.field_labels


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "pods",
        "Pod",
        "",
        "v1",
        True,
        ("po",),
        (
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    ResourceType("namespaces", "Namespace", "", "v1", False, ("ns",), ("status.phase",)),
    ResourceType("nodes", "Node", "", "v1", False, ("no",), ("spec.unschedulable",)),
    ResourceType("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True, ("netpol",)),
    # The CRDs of kubernetes-sigs/network-policy-api (cluster-scoped): v1alpha2
    # ClusterNetworkPolicy (bundle v0.2.0) and the v1alpha1 kinds clusters still carry.
    ResourceType(
        "clusternetworkpolicies",
        "ClusterNetworkPolicy",
        POLICY_GROUP,
        "v1alpha2",
        False,
        ("cnp",),
    ),
    ResourceType(
        "adminnetworkpolicies", "AdminNetworkPolicy", POLICY_GROUP, "v1alpha1", False, ("anp",)
    ),
    ResourceType(
        "baselineadminnetworkpolicies",
        "BaselineAdminNetworkPolicy",
        POLICY_GROUP,
        "v1alpha1",
        False,
        ("banp",),
    ),
)
# The plurals served by CRDs: FakeAPIServer(crds=False) answers them 404, as a
# cluster without the CRDs installed does.
CRD_PLURALS = frozenset(
    {"clusternetworkpolicies", "adminnetworkpolicies", "baselineadminnetworkpolicies"}
)


def resource_for_kind(kind: str) -> ResourceType:
    """Look a resource up by kind (``Pod``) or plural (``pods``), case-insensitively."""
    wanted = kind.lower()
    for res in RESOURCES:
        if wanted in (res.kind.lower(), res.plural, res.singular) or wanted in res.short_names:
            return res
    raise KeyError(f"fake API server does not serve kind {kind!r}")


def resource_for_path(group: str, version: str, plural: str) -> ResourceType | None:
    for res in RESOURCES:
        if (res.group, res.version, res.plural) == (group, version, plural):
            return res
    return None


def field_value(obj: JSON, field: str) -> str:
    """The string a field selector compares against (missing fields read as "")."""
    cur: Any = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def status(
    code: int,
    message: str,
    reason: str | None = None,
    details: JSON | None = None,
    metadata: JSON | None = None,
) -> JSON:
    """A ``meta/v1 Status`` failure object, as the apiserver returns on errors."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": metadata or {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


class APIError(Exception):
    """An error with a Status body; raised to tests and answered over HTTP as is."""

    def __init__(self, body: JSON, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{body['code']} {body['reason']}: {body['message']}")
        self.status = body
        self.headers = headers or {}

    @property
    def code(self) -> int:
        return int(self.status["code"])


def not_found_path() -> JSON:
    return status(404, "the server could not find the requested resource", details={})


def _group_versions() -> dict[str, list[ResourceType]]:
    out: dict[str, list[ResourceType]] = {}
    for res in RESOURCES:
        out.setdefault(res.api_version, []).append(res)
    return out


def api_versions(server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(group: str) -> JSON | None:
    versions = sorted({r.version for r in RESOURCES if r.group == group and group})
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list() -> JSON:
    groups = sorted({r.group for r in RESOURCES if r.group})
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in (api_group(g) or {}).items() if k not in ("kind", "apiVersion")}
            for g in groups
        ],
    }


def api_resource_list(group: str, version: str) -> JSON | None:
    gv = f"{group}/{version}" if group else version
    served = _group_versions().get(gv)
    if not served:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "list", "watch"],
                "shortNames": list(r.short_names),
            }
            for r in served
        ],
    }


CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted"
    " between the time the first chunk was returned and now may show up in the list."
)


def continue_encode(start: str, rv: int) -> str:
    """A continue token as the apiserver makes: base64url(JSON{v, rv, start}), unpadded.

    ``start`` is the first storage key of the next page; ``rv`` its snapshot (-1: latest).
    """
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def continue_decode(token: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("unsupported continue version")
        return str(data["start"]), int(data["rv"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise APIError(status(400, f"continue key is not valid: {exc}")) from None
