"""Issue 9's scale benchmark: ``python -m bench.scale --size S|M|L`` (docs/bench.md).

gen (cluster file) -> stages (cold compile) -> events (incremental, scratch netns)
-> connrate (TCP conn/s, ruleset vs none) -> report (table); run ties them together.
"""
