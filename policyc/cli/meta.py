"""``policyc version``, ``policyc completion SHELL`` and ``policyc watch``."""

from __future__ import annotations

import argparse
import platform

from policyc import __version__

SHELLS = ("bash", "zsh", "fish")


def version_text() -> str:
    return f"policyc {__version__} (Python {platform.python_version()})"


def build_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--short", action="store_true", help="print the version number only")


def run_version(args: argparse.Namespace) -> int:
    print(__version__ if args.short else version_text())
    return 0


def build_completion(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "shell",
        metavar="SHELL",
        choices=SHELLS,
        help="bash, zsh or fish; e.g. source <(policyc completion bash)",
    )


def run_completion(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["policyc"], shell=args.shell), end="")
    return 0


def build_watch(p: argparse.ArgumentParser) -> None:
    from watcher.main import add_arguments

    add_arguments(p)


def run_watch(args: argparse.Namespace) -> int:
    from watcher.main import run

    return run(args)
