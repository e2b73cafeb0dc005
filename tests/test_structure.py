"""No import circle inside a package: no module imports one that (through any chain) imports it back.

Every import counts, a lazy one inside a function too: a lazy import hides a circle from the interpreter,
not from a reader, and it means two modules share one concept. The graph is read from the source (`ast`),
nothing is imported. Importing `pkg.mod` runs `pkg/__init__.py` first; that implicit step is not an edge,
but `from pkg import name` of a name `__init__` re-exports is one (to `pkg`).
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package's module is its __init__)."""
    names = {}
    for file in sorted((root / package).rglob("*.py")):
        parts = file.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return names


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {module of the same package it imports: line of the first such import}."""
    modules = module_names(root, package)
    graph: dict[str, dict[str, int]] = {}
    for name, file in modules.items():
        is_package = file.name == "__init__.py"
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from .x import y / from . import y
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import pkg.a.b` -> the deepest module that exists
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.setdefault(target, node.lineno)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One circle (a -> b -> ... -> a) per strongly connected group of modules (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_circle(graph, group) for group in groups]


def _circle(graph, group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]]):
            if w == start:
                return path + [start]
            if w in group and w not in seen:
                seen.add(w)
                paths.append(path + [w])
    raise AssertionError("a strongly connected group without a circle")


def assert_no_cycles(package: str, root: Path = ROOT) -> None:
    graph = import_graph(root, package)
    cycles = find_cycles(graph)
    lines = []
    for circle in cycles:
        steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in zip(circle, circle[1:])]
        lines.append("; ".join(steps))
    assert not cycles, f"import circles in {package}:\n" + "\n".join(lines)


@pytest.mark.parametrize("package", ["flax_models", "data_prep", "repro"])
def test_no_import_cycles(package):
    assert_no_cycles(package)


# repro's three rooms (docs/design.md): study orchestrates training and reads what report reads; training
# knows nothing of the grid; report reads results files only. The top-level modules are shared by all three.
ROOMS_MAY_NOT_IMPORT = {
    "repro.training": ("repro.study", "repro.report"),
    "repro.report": ("repro.study", "repro.training", "jax", "flax", "optax", "orbax", "flax_models", "data_prep"),
}
TOP_LEVEL_MAY_IMPORT_ROOMS = {"repro.__main__"}


def external_imports(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {any imported module name (dotted, as written): line}, every import, lazy ones too."""
    out: dict[str, dict[str, int]] = {}
    for name, file in module_names(root, package).items():
        edges = out.setdefault(name, {})
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges.setdefault(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                for alias in node.names:
                    edges.setdefault(f"{node.module}.{alias.name}", node.lineno)
    return out


def room_violations(root: Path = ROOT) -> list[str]:
    found = []
    for module, imports in external_imports(root, "repro").items():
        forbidden = next((v for k, v in ROOMS_MAY_NOT_IMPORT.items() if module == k or module.startswith(k + ".")),
                         None)
        if forbidden is None and module.count(".") == 1 and module not in TOP_LEVEL_MAY_IMPORT_ROOMS:
            forbidden = ("repro.study", "repro.training", "repro.report")   # the shared floor imports no room
        for target, line in imports.items():
            if any(target == f or target.startswith(f + ".") for f in forbidden or ()):
                found.append(f"{module} (line {line}) imports {target}")
    return found


def test_the_rooms_of_repro_import_only_downwards():
    assert room_violations() == []


def test_a_planted_upward_import_is_found(tmp_path):
    for sub in ("repro/report", "repro/training", "repro/study"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "__init__.py").write_text("")
    (tmp_path / "repro" / "__init__.py").write_text("")
    (tmp_path / "repro" / "results.py").write_text("def f():\n    from repro.study import cell\n")
    (tmp_path / "repro" / "report" / "rows.py").write_text("import jax.numpy as jnp\n")
    (tmp_path / "repro" / "training" / "loop.py").write_text("from repro.study.cell import x\n")
    assert sorted(room_violations(tmp_path)) == [
        "repro.report.rows (line 1) imports jax.numpy", "repro.results (line 2) imports repro.study.cell",
        "repro.training.loop (line 1) imports repro.study.cell.x"]


def test_the_report_imports_no_jax():
    """The report runs where the study's results were copied to, a laptop without jax's weight."""
    code = "import sys, repro.report, repro.results; bad = [m for m in ('jax', 'flax', 'optax', 'torch') if m in sys.modules]; assert not bad, bad"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_repro_top_level_is_about_a_dozen_modules():
    top = sorted(p.name for p in (ROOT / "repro").glob("*.py"))
    assert len(top) <= 13, top


def test_a_planted_lazy_circle_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("from pkg import b\n\ndef f():\n    return b.g()\n")
    (pkg / "b.py").write_text("def g():\n    from .sub import c\n    return c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text(textwrap.dedent("""
        def h():
            import pkg.a  # lazy: still a circle a -> b -> sub.c -> a
            return pkg.a
    """))
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.b": 1} and graph["pkg.b"] == {"pkg.sub.c": 2}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    with pytest.raises(AssertionError, match=r"pkg.a \(line 1\) -> pkg.b; pkg.b \(line 2\) -> pkg.sub.c; "
                                             r"pkg.sub.c \(line 3\) -> pkg.a"):
        assert_no_cycles("pkg", tmp_path)

    (pkg / "sub" / "c.py").write_text("def h():\n    return 1\n")
    assert_no_cycles("pkg", tmp_path)
    # `from pkg import f` goes through __init__, which imports a: a circle through the package itself
    (pkg / "b.py").write_text("from pkg import f\n")
    assert find_cycles(import_graph(tmp_path, "pkg")) == [["pkg", "pkg.a", "pkg.b", "pkg"]]
