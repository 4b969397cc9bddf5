"""The enforced signal: is a local pod's policy in the kernel yet?

A local pod becomes *pending* when the agent first learns of it (its API
event or its CNI ADD, whichever comes first), when its addresses or labels
change, when a policy of its namespace or any ClusterNetworkPolicy changes,
and when its namespace's labels change.  It becomes *enforced* when the
transaction holding its rules has been committed to the kernel; the time
from the event to the commit goes into the ``policyc_enforce_seconds``
histogram.  ``/pods`` serves ``snapshot()``; ``policyc status POD`` reads it.

Times are the agent's: the pod's creationTimestamp is set by the API server
before scheduling and would count the image pull, which is not ours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

from policyc.model import Direction


@dataclass(frozen=True, slots=True)
class PodState:
    """``since``/``enforced_at``: seconds since the epoch; ``latency``: seconds."""

    pod: str
    ips: tuple[str, ...]
    enforced: bool
    since: float  # when it last became pending
    enforced_at: float | None = None
    latency: float | None = None
    generation: int = 0  # bumped on each pending event
    ingress_policies: tuple[str, ...] = ()
    egress_policies: tuple[str, ...] = ()
    audit_policies: tuple[str, ...] = ()


class EnforceTracker:
    """Thread-safe: the agent writes, the HTTP server reads."""

    def __init__(self) -> None:
        self._pods: dict[str, PodState] = {}
        self._t0: dict[str, float] = {}  # pod -> monotonic time it became pending
        self._lock = threading.Lock()

    def pending(self, pod: str, ips: Iterable[str]) -> None:
        """``pod`` changed in a way its rules depend on; keeps the earliest
        pending time when several events come before one commit."""
        now = time.time()
        with self._lock:
            old = self._pods.get(pod)
            ips = tuple(ips)
            if old is not None and not old.enforced:
                self._pods[pod] = replace(old, ips=ips or old.ips)
                return
            gen = old.generation + 1 if old is not None else 1
            self._pods[pod] = PodState(pod, ips, False, now, generation=gen)
            self._t0[pod] = time.monotonic()

    def forget(self, pod: str) -> None:
        with self._lock:
            self._pods.pop(pod, None)
            self._t0.pop(pod, None)

    def committed(
        self, policies: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None
    ) -> list[tuple[str, float]]:
        """The kernel holds the rules of every pending pod: mark them enforced
        and return (pod, latency in seconds) for each.  ``policies``: pod -> {"Ingress",
        "Egress", "audit": policy keys} to show on ``/pods``."""
        now, mono = time.time(), time.monotonic()
        out = []
        with self._lock:
            for pod, st in list(self._pods.items()):
                pol = (policies or {}).get(pod, {})
                if pol:
                    st = replace(
                        st,
                        ingress_policies=pol.get(Direction.INGRESS.value, ()),
                        egress_policies=pol.get(Direction.EGRESS.value, ()),
                        audit_policies=pol.get("audit", ()),
                    )
                if not st.enforced:
                    lat = mono - self._t0.pop(pod, mono)
                    st = replace(st, enforced=True, enforced_at=now, latency=lat)
                    out.append((pod, lat))
                self._pods[pod] = st
        return out

    def get(self, pod: str) -> PodState | None:
        with self._lock:
            return self._pods.get(pod)

    def snapshot(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return {k: asdict(v) for k, v in sorted(self._pods.items())}
