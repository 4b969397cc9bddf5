"""Write the ``policyc-cni`` launcher that a node installs into /opt/cni/bin.

    python -m cni.install_shim /opt/cni/bin            # writes /opt/cni/bin/policyc-cni
    python -m cni.install_shim /opt/cni/bin/my-name    # any other file name

The console script that pip generates starts a full interpreter: ``site``
imports every ``.pth`` hook (~14 ms for an editable install's finder) and the
script imports ``re``.  The launcher instead names *this* interpreter by
absolute path with ``-I -S`` (isolated: no PYTHON* variables, no user site,
no current directory on ``sys.path``; no ``site`` at all) and puts the
directory that holds the ``cni`` package on ``sys.path`` itself.  A thick
request then costs the bare interpreter start (~8 ms) plus ~1 ms.  Standalone
mode (no agent listening) appends the site-packages directories recorded here
to ``sys.path`` before importing the plugin (no ``.pth`` hooks run: the
package itself is found through the root above).
"""

from __future__ import annotations

import argparse
import os
import site
import sys
import tempfile

NAME = "policyc-cni"
FLAGS = "-IS"  # one shebang argument: the kernel passes the rest of the line as one word

TEMPLATE = """#!{python} {flags}
# policyc-cni launcher, written by `python -m cni.install_shim`; rerun it after
# moving the virtualenv or the package.  {flags}: isolated, no site (see cni/install_shim.py).
import sys
sys.path.append({root!r})
from cni.main import main
main({site_dirs!r})
"""


def package_root() -> str:
    """The sys.path entry that holds the ``cni`` package (this file's grandparent)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def site_dirs() -> list[str]:
    """This interpreter's site-packages (a venv's own, when run from a venv)."""
    return [d for d in site.getsitepackages() if os.path.isdir(d)]


def render(
    python: str | None = None, root: str | None = None, dirs: list[str] | None = None
) -> str:
    python = os.path.abspath(python or sys.executable)
    root = root or package_root()
    dirs = site_dirs() if dirs is None else dirs
    if any(c.isspace() for c in python) or len(python) + len(FLAGS) + 3 > 255:
        raise SystemExit(f"cannot name {python!r} on a #! line")
    # Not realpath(): a venv's bin/python must stay the venv's (site.main() finds
    # pyvenv.cfg next to it in standalone mode).
    return TEMPLATE.format(python=python, flags=FLAGS, root=root, site_dirs=dirs)


def install(
    dest: str, python: str | None = None, root: str | None = None, dirs: list[str] | None = None
) -> str:
    """Write the launcher atomically (a runtime may be executing the old one)."""
    path = os.path.join(dest, NAME) if os.path.isdir(dest) else dest
    text = render(python, root, dirs)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".policyc-cni.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", help="directory (e.g. /opt/cni/bin) or file path")
    parser.add_argument("--python", help="interpreter to name (default: this one)")
    parser.add_argument(
        "--site-dir",
        action="append",
        dest="site_dirs",
        help="where standalone mode finds dependencies (default: this interpreter's site-packages)",
    )
    args = parser.parse_args(argv)
    print(install(args.dest, args.python, dirs=args.site_dirs))


if __name__ == "__main__":
    main()
