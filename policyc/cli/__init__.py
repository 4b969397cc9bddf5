"""policyc: compile Kubernetes NetworkPolicy into nftables or iptables rules.

A command is one :class:`Command` in ``COMMANDS``: a function that adds its
arguments to its subparser and a function that runs it and returns the exit
code.  Modules of this package are the composition root: the only ones that
may import every layer (``tests/test_layers.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policyc import observe_cli
from policyc.cli import compile as compile_cmd
from policyc.cli import meta, pol, reach, tools
from policyc.cli.inputs import READERS, cluster_from_args
from policyc.errors import InputError, InputErrors, PolicycError

__all__ = ["COMMANDS", "Command", "READERS", "build_parser", "cluster_from_args", "main"]

EXIT_OK = 0
EXIT_BACKEND = 1  # the kernel, the API server or the system failed
EXIT_INPUT = 2  # bad input or arguments; nothing was changed
EXIT_DENIED = 3  # explain: the connection is denied

EPILOG = """\
exit codes:
  0  success (explain: the connection is allowed)
  1  runtime error: the kernel rejected the ruleset, the API server failed,
     an output could not be written, or apply lacks root (CAP_NET_ADMIN)
  2  bad input or arguments (file:line:col: Kind ns/name: field: message);
     nothing was written or applied
  3  explain: the connection is denied

Run 'policyc COMMAND --help' for a command's arguments."""
MORE_HELP = "\n\nRun 'policyc COMMAND --help'"


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: ``build`` adds its arguments, ``run`` returns the exit code."""

    name: str
    help: str
    build: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    exits: str = ""  # lines added to the exit-code table: what the codes mean here

    def epilog(self) -> str:
        """EPILOG with this command's ``exits`` lines after the table."""
        if not self.exits:
            return EPILOG
        table, _, rest = EPILOG.partition(MORE_HELP)
        return f"{table}\n\n{self.exits.rstrip()}{MORE_HELP}{rest}"


COMMANDS: tuple[Command, ...] = (
    Command(
        "compile",
        "print the ruleset for a node (nft, JSON, iptables or the rule graph)",
        compile_cmd.build_compile,
        compile_cmd.run_compile,
    ),
    Command(
        "apply",
        "compile and program this network namespace atomically (root)",
        compile_cmd.build_apply,
        compile_cmd.run_apply,
    ),
    Command(
        "explain",
        "which policy allows or denies a connection (exit 3: denied)",
        reach.build_explain,
        reach.run_explain,
    ),
    Command(
        "diff",
        "which connections a change of policies or labels opens or closes (exit 1: some)",
        reach.build_diff,
        reach.run_diff,
    ),
    Command("matrix", "print the pod reachability matrix", tools.build_matrix, tools.run_matrix),
    Command("graph", "draw the rule graph (dot, svg or html)", tools.build_graph, tools.run_graph),
    Command(
        "watch",
        "run the node agent: list/watch the cluster, program the kernel incrementally",
        meta.build_watch,
        meta.run_watch,
    ),
    Command(
        "convert",
        "convert NetworkPolicies between YAML and the policy language (.pol)",
        pol.build_convert,
        pol.run_convert,
    ),
    Command("fmt", "rewrite .pol files in canonical layout", pol.build_fmt, pol.run_fmt),
    Command(
        "demo",
        "playground: pods wired by policyc-cni, the agent, a live probed matrix",
        pol.build_demo,
        pol.run_demo,
    ),
    Command(
        "logs",
        "follow and filter the agent's drop log (watch --log-drops)",
        observe_cli.add_logs_arguments,
        observe_cli.run_logs,
        observe_cli.LOGS_EXITS,
    ),
    Command(
        "status",
        "is this pod's policy in the kernel yet? (exit 0 yes, 3 not yet)",
        observe_cli.add_status_arguments,
        observe_cli.run_status,
        observe_cli.STATUS_EXITS,
    ),
    Command("version", "print the version", meta.build_version, meta.run_version),
    Command(
        "completion",
        "print a shell completion script (bash, zsh, fish)",
        meta.build_completion,
        meta.run_completion,
    ),
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The epilog (the exit-code table) as written; the description wrapped
    at the terminal width like the arguments' help (raw, a command's
    one-line description made 290-character lines)."""

    def add_text(self, text: str | None) -> None:
        if text and not text.startswith("exit codes:"):  # the table, as written
            width = max(self._width - self._current_indent, 11)
            pars = text.split("\n\n")
            text = "\n\n".join(textwrap.fill(p, width, break_on_hyphens=False) for p in pars)
        super().add_text(text)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (exit 2), as kubectl says it,
    not a usage dump longer than the error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _CommandParser(_Parser):
    """A command's parser: options may come anywhere among the positional
    arguments (``explain x/a x/b 80 a.yaml --family 4 b.yaml``), as kubectl
    takes them.  Plain argparse stops a ``nargs="*"`` list at the first
    option and refuses the PATHs after it.

    "parse_intermixed_args() ... supports intermixing optional and
    positional arguments" (Python argparse docs); it calls
    ``parse_known_args`` itself (twice: optionals, then positionals), so
    only the outer call, the subparsers action's, is redirected to it.
    """

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            parsed, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False
        # Refused here, not by the top parser: it said "policyc: error:" for
        # `logs --bogus` where a command's other errors say "policyc logs:".
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="policyc",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=meta.version_text())
    sub = parser.add_subparsers(
        dest="cmd",
        required=True,
        metavar="COMMAND",
        title="commands",
        parser_class=_CommandParser,
    )
    for cmd in COMMANDS:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog=cmd.epilog(),
            formatter_class=_Formatter,
        )
        cmd.build(p)
        p.set_defaults(run=cmd.run)
    return parser


def _input_report(exc: InputError | InputErrors) -> str:
    """One ``policyc: error:`` line per error (at most MAX_SHOWN and a count);
    a syntax error's source line and caret follow its line, indented."""
    if isinstance(exc, InputErrors):
        return "\n".join(f"policyc: error: {line}" for line in exc.lines())
    context = "".join(f"\n    {line}" for line in exc.context.splitlines())
    return f"policyc: error: {exc}{context}"


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion (argcomplete): answers and exits when the shell asks."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _complete(parser)
    try:
        # --help is written here, so a reader that goes away (`| head`) must
        # end as quietly as it does for a command's own output.
        args = parser.parse_args(argv)
        return int(args.run(args))
    except (InputError, InputErrors) as exc:
        print(_input_report(exc), file=sys.stderr)
        return EXIT_INPUT
    except PolicycError as exc:
        print(f"policyc: error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except BrokenPipeError:
        # The reader went away (`policyc matrix | head`): stop quietly, as cat
        # does.  stdout now points at /dev/null so the exit flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BACKEND
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
