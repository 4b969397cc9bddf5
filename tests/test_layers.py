"""The layers, kept by walking the imports (issue 8).

Data flows one way: sources -> model -> IR -> passes -> lowered -> backend
-> kernel.  ``policyc/cli/`` (the CLI package) is the composition root and the only module
allowed to know every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("policyc", "backends", "watcher", "cni", "grammar")
# What a backend may see of the compiler: the lowered layer, the IR types,
# the naming contract and the error types.
BACKEND_MAY_USE = {"policyc.chains", "policyc.ir", "policyc.names", "policyc.errors"}
# Imports inside functions are allowed only where a measured start-up cost
# requires them (the CNI plugin's exec path) or in a composition root.
LAZY_OK = {"cni/main.py", "cni/plugin.py", "watcher/main.py"}
LAZY_OK_UNDER = ("policyc/cli/",)  # the CLI package: the composition root


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


MODULES = modules()


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported project module, inside a function?, line) for each import."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                out.extend((a.name, inner, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    out.append((sub if sub in MODULES else child.module, inner, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return [(m, n, line) for m, n, line in out if m.split(".")[0] in PACKAGES]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def violations(prefix: str, allowed: object) -> list[str]:
    bad = []
    for name, path in MODULES.items():
        if not (name == prefix or name.startswith(prefix + ".")):
            continue
        for target, _, line in imports(path):
            if not allowed(name, target):  # type: ignore[operator]
                bad.append(f"{rel(path)}:{line}: imports {target}")
    return bad


def top(name: str) -> str:
    return name.split(".")[0]


def test_compiler_core_imports_no_outer_layer() -> None:
    assert not violations(
        "policyc",
        lambda me, t: me == "policyc.cli" or me.startswith("policyc.cli.") or top(t) == "policyc",
    )


def test_backends_see_only_the_lowered_layer() -> None:
    assert not violations(
        "backends",
        lambda me, t: top(t) == "backends" or t in BACKEND_MAY_USE,
    )


def test_watcher_reaches_backends_only_through_the_registry() -> None:
    assert not violations(
        "watcher",
        # watcher.main, a composition root, also sets the bridge sysctls up.
        lambda me, t: (
            top(t) != "backends"
            or t in ("backends", "backends.contract")
            or (me == "watcher.main" and t == "backends.sysctl")
        ),
    )


def test_cni_imports_only_the_naming_contract() -> None:
    assert not violations("cni", lambda me, t: top(t) == "cni" or t == "policyc.names")


def test_grammar_imports_only_model_level_pieces() -> None:
    assert not violations("grammar", lambda me, t: top(t) in ("grammar", "policyc"))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_hidden_function_level_imports(name: str) -> None:
    path = MODULES[name]
    if rel(path) in LAZY_OK or rel(path).startswith(LAZY_OK_UNDER):
        return
    nested = [f"{rel(path)}:{line}: {t}" for t, inner, line in imports(path) if inner]
    assert not nested


def test_no_import_cycles() -> None:
    graph = {
        m: {t for t, _, _ in imports(p) if t in MODULES and t != m} for m, p in MODULES.items()
    }
    # A package's __init__ importing its own submodules is how registries
    # are built; a submodule importing its package's name is not a cycle.
    for m in graph:
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t) :] + [t] if t in stack else [m, t])
            elif t not in state:
                walk(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert not cycles
