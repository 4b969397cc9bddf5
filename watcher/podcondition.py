"""The Pod condition ``policyc.io/PolicyEnforced`` (``watch --pod-condition``).

When a local pod's rules are first committed to the kernel, the agent sets
this condition to True on the pod's status, so that a readiness gate
(``spec.readinessGates: [{conditionType: policyc.io/PolicyEnforced}]``) or
an init container can wait for it.  It is set once per pod and never
flipped back while the pod lives: a policy change in the namespace makes
the pod pending on ``/pods`` for milliseconds, and a readiness flap then
would take it out of its Services for nothing.

Patches go out from a thread of their own (the agent's loop never waits on
the API server), as strategic merge patches of ``status.conditions``, which
the Pod API merges by ``type`` ("patchMergeKey: type"), so the kubelet's
own conditions are kept.  RBAC: ``pods/status`` ``patch`` (deploy/).
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
from typing import Any

log = logging.getLogger("policyc.watch")

CONDITION = "policyc.io/PolicyEnforced"
PATCH_TYPE = "application/strategic-merge-patch+json"
RETRIES = 5


def condition_patch(latency: float, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The status patch that sets the condition True."""
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cond = {
        "type": CONDITION,
        "status": "True",
        "reason": "RulesInKernel",
        "message": f"policy rules in the kernel {latency:.3f}s after the pod's event",
        "lastTransitionTime": when,
    }
    return {"status": {"conditions": [cond]}}


class PodConditions:
    """Queue of pods to mark; ``start()`` runs the sender thread."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api = client.CoreV1Api(api_client)
        self.queue: queue.Queue[tuple[str, float, int]] = queue.Queue()
        self.done: set[str] = set()
        self.stop = threading.Event()
        self.sent = 0

    def start(self) -> None:
        threading.Thread(target=self._run, name="pod-condition", daemon=True).start()

    def enforced(self, pod: str, latency: float) -> None:
        """``pod`` (namespace/name) is enforced; mark it unless already marked."""
        if pod not in self.done:
            self.done.add(pod)
            self.queue.put((pod, latency, 0))

    def forget(self, pod: str) -> None:
        self.done.discard(pod)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                pod, latency, tries = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if pod not in self.done:  # deleted meanwhile
                continue
            if not self.send(pod, latency) and tries + 1 < RETRIES:
                self.stop.wait(min(5.0, 0.2 * 2**tries))
                self.queue.put((pod, latency, tries + 1))

    def send(self, pod: str, latency: float) -> bool:
        """One PATCH; True when done (or the pod is gone), False to retry."""
        from kubernetes.client.exceptions import ApiException

        ns, _, name = pod.partition("/")
        try:
            self.api.patch_namespaced_pod_status(
                name, ns, condition_patch(latency), _content_type=PATCH_TYPE
            )
        except ApiException as exc:
            if exc.status == 404:
                return True
            log.warning("pod condition %s on %s: %s %s", CONDITION, pod, exc.status, exc.reason)
            return False
        except Exception as exc:  # network errors: retried
            log.warning("pod condition %s on %s: %s", CONDITION, pod, exc)
            return False
        self.sent += 1
        return True
