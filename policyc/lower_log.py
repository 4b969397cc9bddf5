"""The ends of isolated pods' chains when drops are logged (``--log-drops``).

"Default-deny drops are attributed too: they are exactly the drops at the
end of an isolated pod's chain" (issue 12): so the log rule sits right
before each such drop, and the agent names the policies isolating the pod
(``watcher.droplog``).  The log is NFLOG, asynchronous: the packet never
waits on userspace; a meter per pod address bounds the lines a flood makes.

An audit-only pod's chain ends in a log tagged ``audit`` and no drop: it
falls off the end and the direction allows (docs/observability.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from policyc.chains import DROP, Action, Field, LogSpec, Rule, Verb
from policyc.ir import Family
from policyc.logprefix import LETTER, LOG_GROUP, RATE, LogPrefix, Tag
from policyc.model import Direction


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``group``: the NFLOG group; ``rate``: lines per second per pod address
    and direction (and a burst of as many)."""

    group: int = LOG_GROUP
    rate: int = RATE


def meter_name(tag: Tag, direction: Direction, family: Family) -> str:
    """``pclog_e4``, ``pcaud_i6``...: at most 15 characters (hashlimit's limit)."""
    word = "log" if tag is Tag.DROP else "aud"
    return f"pc{word}_{LETTER[direction].lower()}{family.suffix}"


def log_rule(config: LogConfig, tag: Tag, direction: Direction, family: Family, chain: str) -> Rule:
    """Log (rate-limited per pod address on the dropping side) and go on."""
    key = Field.SADDR if direction is Direction.EGRESS else Field.DADDR
    spec = LogSpec(
        group=config.group,
        prefix=str(LogPrefix(tag, direction, chain)),
        key=key,
        family=family,
        rate=config.rate,
        meter=meter_name(tag, direction, family),
    )
    word = "would drop (audit)" if tag is Tag.AUDIT else "dropped"
    return Rule((), Action(Verb.LOG, spec.prefix, log=spec), f"log: {word}")


def drop_end(
    config: LogConfig | None, direction: Direction, family: Family, chain: str, comment: str
) -> tuple[Rule, ...]:
    """The drop that ends an isolated pod's chain, logged first when configured."""
    drop = Rule((), DROP, comment)
    if config is None:
        return (drop,)
    return (log_rule(config, Tag.DROP, direction, family, chain), drop)
