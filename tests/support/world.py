"""The e2e cluster as API objects (fixtures/_base), with policies added and
labels changed, and its YAML text."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "fixtures" / "_base" / "cluster.yaml"


def base_objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(BASE.read_text()) if d]


def world(
    policies: Sequence[dict[str, Any]],
    relabel: dict[tuple[str, str, str], dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    objs = copy.deepcopy(base_objects())
    for obj in objs:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        if relabel and key in relabel:
            meta["labels"] = dict(relabel[key])
    return objs + [copy.deepcopy(p) for p in policies]


def dump(objs: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objs), sort_keys=True)
