"""``--log-drops`` and ``--log-group``, shared by ``compile``, ``apply`` and
``watch`` (docs/observability.md)."""

from __future__ import annotations

import argparse

from policyc.logprefix import LOG_GROUP


def log_group(text: str) -> int:
    """``--log-group``: an NFLOG group, 1-65535.  nft's ``log group`` and
    iptables' ``--nflog-group`` are 16 bits (65536 became group 0); "Group 0
    is used by the kernel to log connection tracking invalid message"
    (ulogd.conf).  Raises ArgumentTypeError (argparse: exit 2)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: want an NFLOG group 1-65535")
    return int(text)


def add_log_group(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-group",
        type=log_group,
        default=LOG_GROUP,
        metavar="N",
        help=f"the NFLOG group drops are logged to, 1-65535 (default {LOG_GROUP}; "
        "0 is conntrack's)",
    )
