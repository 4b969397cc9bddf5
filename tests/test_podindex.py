"""The pod index answers every selector exactly as ``Selector.matches`` over
all pods would, and the scope index never skips a set or policy whose scope
matches a pod, through pod churn and namespace relabelling."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.model import Op, Pod, Requirement, Selector
from policyc.podindex import PodIndex
from policyc.scopeindex import Scope, ScopeIndex

NAMESPACES = ("x", "y", "z")
KEYS = ("app", "tier", "team")
VALUES = ("1", "2", "3")

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
pods_st = st.builds(
    lambda ns, name, labels: Pod(ns, name, tuple(sorted(labels.items()))),
    st.sampled_from(NAMESPACES),
    st.sampled_from(("p0", "p1", "p2", "p3", "p4", "p5")),
    labels_st,
)
requirement_st = st.one_of(
    st.builds(
        Requirement,
        st.sampled_from(KEYS),
        st.sampled_from((Op.IN, Op.NOT_IN)),
        st.lists(st.sampled_from(VALUES), max_size=3, unique=True).map(tuple),
    ),
    st.builds(Requirement, st.sampled_from(KEYS), st.sampled_from((Op.EXISTS, Op.DOES_NOT_EXIST))),
)
selector_st = st.lists(requirement_st, max_size=3).map(lambda rs: Selector(tuple(rs)))
scope_st = st.builds(
    Scope, selector_st, st.sampled_from(NAMESPACES), st.one_of(st.none(), selector_st)
)
# One step: a pod put (replacing one of the same key), a pod removed, or a
# namespace relabelled.
step_st = st.one_of(
    st.tuples(st.just("put"), pods_st),
    st.tuples(st.just("del"), pods_st),
    st.tuples(st.just("ns"), st.sampled_from(NAMESPACES), labels_st),
)


def churn(index: PodIndex, steps: list[tuple[object, ...]], ns: dict[str, dict[str, str]]) -> None:
    for step in steps:
        if step[0] == "ns":
            ns[step[1]] = step[2]  # type: ignore[index,assignment]
            continue
        pod = step[1]
        assert isinstance(pod, Pod)
        old = index.pods.get(pod.key)
        if old is not None:
            index.remove(old)
        if step[0] == "put":
            index.add(pod)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step_st, max_size=30), selectors=st.lists(selector_st, min_size=1))
def test_select_equals_matches(steps: list[tuple[object, ...]], selectors: list[Selector]) -> None:
    index = PodIndex()
    churn(index, steps, {})
    for sel in selectors:
        for ns in NAMESPACES:
            got = {p.key for p in index.select(ns, sel)}
            want = {p.key for p in index.pods.values() if p.namespace == ns}
            want = {k for k in want if sel.matches(index.pods[k].label_map)}
            assert got == want, (ns, str(sel))


def matches(sc: Scope, pod: Pod, ns_labels: dict[str, str]) -> bool:
    if sc.namespace_selector is None:
        in_ns = pod.namespace == sc.namespace
    else:
        in_ns = sc.namespace_selector.matches(ns_labels)
    return in_ns and sc.pod_selector.matches(pod.label_map)


@settings(max_examples=300, deadline=None)
@given(
    scopes=st.lists(st.lists(scope_st, min_size=1, max_size=3), min_size=1, max_size=6),
    steps=st.lists(step_st, max_size=30),
    dropped=st.sets(st.integers(0, 5)),
)
def test_candidates_cover_every_match(
    scopes: list[list[Scope]], steps: list[tuple[object, ...]], dropped: set[int]
) -> None:
    ns: dict[str, dict[str, str]] = {n: {"kubernetes.io/metadata.name": n} for n in NAMESPACES}
    scx = ScopeIndex(lambda n: ns[n])
    index = PodIndex()
    half = len(steps) // 2
    churn(index, steps[:half], ns)
    for p in index.pods.values():
        scx.ensure(p.namespace)
    for i, s in enumerate(scopes):
        scx.add(f"s{i}", s)
    for i in dropped & set(range(len(scopes))):
        scx.remove(f"s{i}")
    for step in steps[half:]:
        if step[0] == "ns":
            name = step[1]
            assert isinstance(name, str)
            ns[name] = step[2]  # type: ignore[assignment]
            scx.namespace_changed(name)
        else:
            churn(index, [step], ns)
    live = {f"s{i}": s for i, s in enumerate(scopes) if i not in dropped}
    for pod in index.pods.values():
        want = {n for n, s in live.items() if any(matches(sc, pod, ns[pod.namespace]) for sc in s)}
        assert want <= scx.candidates(pod)
        assert scx.candidates(pod) <= set(live)
    # The cached namespace selections agree with the labels (every pod's
    # namespace is seen by now: candidates() saw it).
    seen = {p.namespace for p in index.pods.values()}
    for s in live.values():
        for sel in {sc.namespace_selector for sc in s} - {None}:
            assert sel is not None
            got = scx.selected(sel)
            assert all(sel.matches(ns[n]) for n in got)
            assert seen & got == {n for n in seen if sel.matches(ns[n])}
