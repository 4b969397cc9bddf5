"""``policyc-cni``: the executable the container runtime runs.

Kept import-light: the real work is done either by the node agent over a unix
socket (thick mode) or, when no agent is listening, by importing
``cni.plugin`` here (standalone).  The thick path imports only ``sys``, the C
modules ``posix``, ``_json`` and ``_socket`` (see ``cni.agent_client``) and
this package, so that under the launcher ``cni.install_shim`` writes
(``python -I -S``) a thick request costs little more than the interpreter's
own start.  Not even ``os``: it costs ~1 ms.
"""

import posix
import sys

from cni import agent_client


def environ() -> "dict[str, str]":
    """``os.environ`` without importing ``os`` (same decoding)."""
    enc = sys.getfilesystemencoding()
    return {
        k.decode(enc, "surrogateescape"): v.decode(enc, "surrogateescape")
        for k, v in posix.environ.items()
    }


def _add_site(site_dirs: "list[str] | None") -> None:
    """Standalone mode needs site-packages (for ``nftables``), which the launcher's
    ``-S`` left out: add the directories it recorded at install time (without
    running ``.pth`` hooks: an editable install's finder alone costs ~14 ms),
    else do what ``site`` would have done."""
    if site_dirs is not None:
        sys.path.extend(d for d in site_dirs if d not in sys.path)
    elif sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


def run(
    env: "dict[str, str]", stdin: bytes, site_dirs: "list[str] | None" = None
) -> "tuple[int, str]":
    if env.get("CNI_COMMAND") == "VERSION":
        from cni.spec import version_reply

        return 0, version_reply(stdin)
    reply = agent_client.call(agent_client.socket_path(env, stdin), env, stdin)
    if reply is not None:
        return reply
    _add_site(site_dirs)
    from cni.plugin import execute  # standalone: pays for the imports here

    outcome = execute(env, stdin)
    return outcome.code, outcome.stdout


def main(site_dirs: "list[str] | None" = None) -> None:
    """``site_dirs``: where standalone mode finds dependencies (the launcher passes them)."""
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    code, out = run(environ(), stdin, site_dirs)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown (~1 ms of module and GC cleanup, more after
    # a standalone request): nothing is left to run or flush.
    posix._exit(code)


if __name__ == "__main__":
    main()
