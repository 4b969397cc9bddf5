"""``setspecs.PeerIndex`` is only an index: the pods it lets a peer set
select are exactly those some peer matches (``peer_matches`` over all)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.model import Op, Peer, Pod, Requirement, Selector
from policyc.setspecs import PeerIndex, peer_matches

KEYS, VALUES, NAMESPACES = ("a", "b", "c"), ("1", "2", "3"), ("x", "y")
NS_LABELS = {"x": {"ns": "x"}, "y": {"ns": "y"}}

requirements = st.builds(
    Requirement,
    st.sampled_from(KEYS),
    st.sampled_from(list(Op)),
    st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True).map(tuple),
)
selectors = st.lists(requirements, max_size=3).map(lambda rs: Selector(tuple(rs)))
peers = st.builds(Peer, st.none() | selectors, st.none() | selectors)
labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
pods = st.builds(
    lambda ns, lab: Pod(ns, "p", tuple(sorted(lab.items()))), st.sampled_from(NAMESPACES), labels
)


@settings(max_examples=300, deadline=None)
@given(st.lists(peers, max_size=8), st.lists(pods, min_size=1, max_size=6))
def test_index_selects_exactly_what_a_scan_selects(ps: list[Peer], pod_list: list[Pod]) -> None:
    index = PeerIndex.of(ps)
    for pod in pod_list:
        scan = any(peer_matches(p, "x", pod, NS_LABELS.__getitem__) for p in ps)
        cands = list(index.candidates(pod.label_map))
        indexed = any(peer_matches(p, "x", pod, NS_LABELS.__getitem__) for p in cands)
        assert scan == indexed
        assert set(cands) <= set(ps)


def test_many_single_label_peers_give_few_candidates() -> None:
    ps = [Peer(Selector((Requirement(f"k{i}", Op.IN, ("v",)),))) for i in range(10_000)]
    index = PeerIndex.of(ps)
    assert list(index.candidates({"k7": "v", "other": "v"})) == [ps[7]]
    assert not index.rest


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            Peer,
            st.none() | st.just(Selector()) | selectors,
            st.none() | st.just(Selector()) | selectors,
        ),
        max_size=8,
    )
)
def test_normal_peers_drops_exactly_the_covered_ones(ps: list[Peer]) -> None:
    """``_normal_peers`` (three lookups per peer) equals the pairwise scan."""
    from policyc.setspecs import _normal_namespace, _normal_peers, normal_selector

    found = {
        (_normal_namespace(p.namespace_selector, "x"), normal_selector(p.pod_selector)) for p in ps
    }

    def covers(a: tuple[str, str], b: tuple[str, str]) -> bool:
        return a != b and a[0] in ("*", b[0]) and a[1] in ("*", b[1])

    assert _normal_peers(ps, "x") == sorted(
        q for q in found if not any(covers(p, q) for p in found)
    )
