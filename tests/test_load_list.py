"""A JSON ``kind: List`` read item by item (policyc.load_list) gives the same
objects and the same located errors as the whole-document reader."""

from __future__ import annotations

import json

import pytest

from policyc import load_json, load_list
from policyc.errors import InputErrors
from policyc.load import _split, scan_text
from policyc.load_list import ListItems
from policyc.parse import build_cluster


def _pod(name: str, port: object = 80) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "a", "labels": {"app": name}},
        "spec": {
            "nodeName": "n",
            "containers": [{"name": "c", "ports": [{"containerPort": port}]}],
        },
        "status": {"podIPs": [{"ip": "10.244.0.9"}]},
    }


def _text(items: list[object], kind_last: bool = True) -> str:
    doc: dict[str, object] = {"apiVersion": "v1", "items": items, "kind": "List"}
    if not kind_last:
        doc = {"kind": "List", "apiVersion": "v1", "items": items}
    return json.dumps(doc, indent=4)


def _whole(text: str) -> list[object]:
    data = load_json.loads(text)
    return [
        (r.data, r.prefix, r.loc(()))
        for r in _split(data, "f.json", load_json.JsonLocs("f.json", text))
    ]


@pytest.mark.parametrize("kind_last", [True, False])
def test_items_are_streamed_and_equal(kind_last: bool) -> None:
    text = _text(
        [
            _pod("p1"),
            _pod("p2"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        ],
        kind_last,
    )
    got = scan_text(text, "f.json")
    assert isinstance(got, ListItems)
    assert [(r.data, r.prefix, r.loc(())) for r in got] == _whole(text)


def test_error_location_is_the_items_field() -> None:
    text = _text([_pod("p1"), _pod("p2", port="x" * 20)])
    with pytest.raises(InputErrors) as streamed:
        build_cluster(scan_text(text, "f.json"))
    data = load_json.loads(text)
    with pytest.raises(InputErrors) as whole:
        build_cluster(_split(data, "f.json", load_json.JsonLocs("f.json", text)))
    assert [str(e) for e in streamed.value.errors] == [str(e) for e in whole.value.errors]
    assert "f.json:52:33:" in str(streamed.value.errors[0])


@pytest.mark.parametrize(
    "text",
    [
        '{"kind": "List", "items": [1, 2]}',
        '{"kind": "List", "items": [{"a": 1, "a": 2}]}',
        '{"kind": "List", "kind": "List", "items": []}',
        '{"kind": "List", "items": [{"a": NaN}]}',
        '{"kind": "List", "items": [{}],}',
        '{"kind": "List", "items": [{}]} x',
        '{"kind": "Pod", "items": [{}]}',
        '{"kind": "List", "items": {}}',
    ],
)
def test_anything_unusual_takes_the_whole_document_path(text: str) -> None:
    assert load_list.scan(text, "f.json") is None


def test_duplicate_item_reported_at_first_copy() -> None:
    text = _text([_pod("p1"), _pod("p1")])
    with pytest.raises(InputErrors) as exc:
        build_cluster(scan_text(text, "f.json"))
    assert "duplicate object, first defined at f.json:" in str(exc.value.errors[0])
