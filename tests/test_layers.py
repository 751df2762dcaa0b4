"""The library's packages are layers and imports flow downward only.

The graph is read from the source with ``ast``: every import, at module level and inside functions. A test
fails on any import cycle between modules and on any import from a lower layer to a higher one. An import
inside a function is kept for an optional heavy dependency only, each with its reason on the line.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genmodels"
# Lowest first. A module may import its own layer and the layers before it; "" is the package itself.
LAYERS = ["core", "music", "harmony", "tokenizers", "nn", "io", "infer", "learn", "eval", "domains", "cli"]
APP = ["app"]  # above the library: the pages and their support modules


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of a known module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [f"{child.module}.{a.name}" for a in child.names]
            for n in names:
                target = resolve(n)
                if target:
                    found.append((target, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def layer_of(module: str) -> str:
    """The layer package of a module; "" for the package's own entry points (``genmodels``, ``__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] != "__main__" else ""


def graph() -> dict[str, set[str]]:
    mods = library_modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for target, _, _ in imports_of(path, set(mods)):
            if target != name:
                edges[name].add(target)
    return edges


def test_every_module_is_in_a_layer():
    stray = [m for m in library_modules() if layer_of(m) and layer_of(m) not in LAYERS]
    assert not stray, f"modules outside the layer packages {LAYERS}: {stray}"


def test_imports_flow_downward_only():
    mods = library_modules()
    upward = []
    for name, path in mods.items():
        here = layer_of(name)
        for target, line, _ in imports_of(path, set(mods)):
            there = layer_of(target)
            if here and there and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{path.relative_to(ROOT)}:{line} ({here}) imports {target} ({there})")
            if here and not there:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports the package entry {target}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(library_modules()):
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_app_is_above_the_library_and_the_library_never_imports_streamlit():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("streamlit", "app") for n in names), path


# The only imports a function may hold, and why each waits for its first use.
LAZY_IMPORTS = {
    "music21": "takes seconds to import; only the corpus builders, notation exports and read-back checks use it",
    "verovio": "the score engraver, loaded by the pages and commands that draw a score",
    "scipy": "one four-weight fit in the harmony baselines",
    "tinysoundfont": "the synthesizer, loaded only when audio is rendered",
}


def test_imports_inside_functions_are_heavy_optional_dependencies_only():
    inside = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if (name or "").split(".")[0] not in LAZY_IMPORTS:
                        inside.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not inside, "imports inside functions (move them to the top of the module):\n" + "\n".join(inside)
