"""The packages of TextLesionSegLib import each other without circles, counting the imports at
module level (what runs when a module is imported; ``if TYPE_CHECKING:`` blocks and imports inside
functions are not counted). The types the pipeline and the models share live below both, in
``core``, which imports no other package but ``errors``."""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "TextLesionSeg" / "TextLesionSegLib"


def _node(module: str) -> str:
    """The graph node of a dotted module: its top package (``models``), or a top module (``errors``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _module_level_imports(path: Path, package: str) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Try):  # try: import x / except ImportError at file scope runs too
            nodes = node.body + [n for h in node.handlers for n in h.body]
        else:
            nodes = [node]
        for n in nodes:
            if isinstance(n, ast.ImportFrom):
                if n.level:
                    base = package.split(".")[: len(package.split(".")) - n.level + 1]
                    module = ".".join(base + ([n.module] if n.module else []))
                else:
                    module = n.module or ""
                found.add(module)
                if not n.module:  # "from . import x": x may be a module of that package
                    folder = LIB.parent.joinpath(*module.split("."))
                    found |= {f"{module}.{a.name}" for a in n.names
                              if (folder / f"{a.name}.py").is_file() or (folder / a.name).is_dir()}
            elif isinstance(n, ast.Import):
                found |= {a.name for a in n.names}
    return {m for m in found if m.startswith("TextLesionSegLib.")}


def package_graph(lib: Path = LIB) -> dict[str, dict[str, set[str]]]:
    """source node -> target node -> the modules of source that import target, at module level."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(lib.rglob("*.py")):
        parts = list(path.relative_to(lib.parent).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        source = _node(name) if (lib / _node(name)).is_dir() else name.split(".")[-1]
        for module in _module_level_imports(path, package):
            target = _node(module) if (lib / _node(module)).is_dir() else module.split(".")[1] if "." in module else "<root>"
            if target != source:
                graph.setdefault(source, {}).setdefault(target, set()).add(name)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph) | {w for targets in graph.values() for w in targets}):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle_and_names_its_modules():
    graph = {"models": {"pipeline": {"m.a"}}, "pipeline": {"core": {"p.b"}, "models": {"p.c"}}, "core": {}}
    assert cycles(graph) == [["models", "pipeline"]]
    assert cycles({"a": {"b": {"x"}}, "b": {"c": {"y"}}}) == []


def test_no_package_imports_another_in_a_circle_at_module_level():
    graph = package_graph()
    assert {"models", "pipeline", "training", "evaluation", "core"} <= set(graph)
    found = cycles(graph)
    detail = {tuple(c): {f"{a}->{b}": sorted(graph[a][b]) for a in c for b in c if b in graph.get(a, {})} for c in found}
    assert not found, detail


def test_core_sits_below_the_pipeline_and_the_models():
    graph = package_graph()
    assert set(graph.get("core", {})) <= {"errors"}, graph.get("core")
    for upper in ("pipeline", "training", "evaluation"):
        assert "models" not in graph.get(upper, {}), f"{upper} imports models at module level: {graph[upper]['models']}"
