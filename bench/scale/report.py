"""The benchmark's figures as plain-text tables (what ``python -m bench.scale`` prints)."""

from __future__ import annotations

from typing import Any


def _grid(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [
        fmt.format(*r) for r in rows
    ]


def _compile(part: dict[str, Any]) -> list[str]:
    cold = part.get("cold", {})
    if "error" in cold:
        return [f"compile: {cold['error']}"]
    heap = {r["stage"]: r.get("heap_peak_mib") for r in part.get("heap", {}).get("stages", [])}
    rows = []
    total = 0.0
    for r in cold["stages"]:
        total += r["seconds"]
        h = heap.get(r["stage"])
        rows.append(
            [
                r["stage"],
                f"{r['seconds']:.3f}",
                f"{r['peak_rss_mib']:.0f}",
                "-" if h is None else f"{h:.1f}",
            ]
        )
    rows.append(["total", f"{total:.3f}", f"{cold['stages'][-1]['peak_rss_mib']:.0f}", ""])
    out = _grid(["stage", "seconds", "peak RSS MiB", "stage heap MiB"], rows)
    if cold.get("size"):
        out.append("ruleset: " + ", ".join(f"{k} {v}" for k, v in cold["size"].items()))
    return out


def _events(part: dict[str, Any]) -> list[str]:
    if "error" in part:
        return [f"events: {part['error']}"]
    full = part["full"]
    rows = [
        [
            "full (first)",
            f"{full['compute_ms']:.2f}",
            "",
            f"{full['apply_ms']:.2f}",
            "",
            str(full["tx"]),
        ]
    ]
    for name in ("pod_add", "pod_delete", "label_change", "policy_change"):
        e = part[name]
        c, ap, tx = e["compute_ms"], e["apply_ms"], e["tx"]
        size = str(tx["min"]) if tx["min"] == tx["max"] else f"{tx['min']}-{tx['max']}"
        rows.append(
            [
                name,
                f"{c['median']:.2f}",
                f"{c['p99']:.2f}",
                f"{ap['median']:.2f}",
                f"{ap['p99']:.2f}",
                size,
            ]
        )
    head = ["event", "compute med ms", "p99", "apply med ms", "p99", "len(tx)"]
    return _grid(head, rows) + [f"kernel equals the programmed state: {part['kernel_matches']}"]


def _conn(part: dict[str, Any]) -> list[str]:
    if "error" in part:
        return [f"conn/s: {part['error']}"]
    med = part["median"]
    rates = ", ".join(
        f"{m}: {' '.join(f'{x:.0f}' for x in v)}" for m, v in part["per_second"].items()
    )
    return [
        f"new TCP conn/s, median of {part['rounds']} rounds x {part['seconds_per_round']} s: "
        f"ruleset {med['ruleset']:.0f}, none {med['none']:.0f}, ratio {part['ratio']}",
        f"  per round ({rates}); errors {part['errors']}",
    ]


def _split(e: dict[str, Any]) -> str:
    """Medians of until-sync / compute / apply, ms (older JSON: absent)."""
    keys = ("until_sync_ms", "compute_ms", "apply_ms")
    if not all(k in e for k in keys):
        return "-"
    return " / ".join(f"{e[k]['median']:.1f}" for k in keys)


def _watch(part: dict[str, Any]) -> list[str]:
    if "error" in part:
        return [f"watch: {part['error']}"]
    st, ev = part["startup"], part["events"]
    out = [
        f"watcher start-up (list pages -> first complete programming): {st['seconds']:.2f} s "
        f"(listed {st['listed_s']:.2f}, compute {st['compute_s']:.2f}, "
        f"apply {st['apply_s']:.2f}), peak RSS {st['rss_mib']:.0f} MiB, len(tx) {st['tx']}"
    ]
    rows = []
    for name in ("pod_add", "pod_delete", "pod_label", "namespace_label", "policy_change"):
        e = ev[name]
        ops = ", ".join(f"{k} {v}" for k, v in sorted(e["ops"].items()))
        rows.append(
            [
                name,
                f"{e['ms']['median']:.1f}",
                f"{e['ms']['p99']:.1f}",
                _split(e),
                f"{e['syncs']}/{e['samples']}",
                str(e["tx"]["max"]),
                ops,
            ]
        )
    head = ["change", "to kernel med ms", "p99", "wait/compute/apply med", "syncs", "len(tx)"]
    head.append("changed")
    out += _grid(head, rows)
    out.append(f"agent peak RSS {ev['rss_mib']:.0f} MiB; kernel equals: {part['kernel_matches']}")
    return out


def table(result: dict[str, Any]) -> str:
    s = result["size"]
    lines = [
        f"policyc scale benchmark: size {s['name']} ({s['pods']} pods, {s['policies']} policies, "
        f"{s['namespaces']} namespaces, {s['nodes']} nodes, {result['local_pods']} local), "
        f"backend {result['backend']}, opt {result['opt']}, "
        f"cluster {result['cluster_bytes'] / 1e6:.1f} MB",
        "",
    ]
    parts = (("compile", _compile), ("events", _events), ("conn", _conn), ("watch", _watch))
    for key, fn in parts:
        if key in result:
            lines += [*fn(result[key]), ""]
    return "\n".join(lines).rstrip()
