"""Find Python >= 3.10 library use that compiles on Python 3.9 but fails when it runs there.

Slicer 5.8 runs the extension (module, worker, engine, CLI) with Python 3.9. The 3.9 compiler
catches new *syntax* (``match``, ``except*``); it cannot catch a newer *call* such as
``traceback.format_exception(exc)`` (one argument: 3.10+), which only fails on the line that
runs it, often an error path. This AST check, run with any Python >= 3.9, flags those calls.
Heuristic by design: it lists lines to look at; a line that is fine on 3.9 can be marked with
a ``# py39: ok`` comment.

Usage (from the repository root)::

    python Testing/Python/py39_compat.py TextLesionSeg    # prints findings, exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

#: (module, name) imports that exist only from Python 3.10 on (the version they came in)
NEW_IMPORTS: dict[tuple[str, str], str] = {
    **{("typing", name): "3.10" for name in ("TypeAlias", "ParamSpec", "Concatenate", "TypeGuard", "is_typeddict")},
    **{("typing", name): "3.11" for name in ("Self", "Never", "LiteralString", "Required", "NotRequired", "Unpack",
                                            "TypeVarTuple", "assert_never", "assert_type", "reveal_type",
                                            "dataclass_transform")},
    **{("typing", name): "3.12" for name in ("override", "TypeAliasType")},
    **{("types", name): "3.10" for name in ("NoneType", "EllipsisType", "NotImplementedType", "UnionType")},
    ("itertools", "pairwise"): "3.10", ("itertools", "batched"): "3.12",
    ("contextlib", "aclosing"): "3.10", ("contextlib", "chdir"): "3.11",
    ("dataclasses", "KW_ONLY"): "3.10", ("inspect", "get_annotations"): "3.10",
    ("enum", "StrEnum"): "3.11", ("datetime", "UTC"): "3.11", ("operator", "call"): "3.11",
    ("hashlib", "file_digest"): "3.11", ("importlib.metadata", "packages_distributions"): "3.10",
    ("math", "cbrt"): "3.11", ("math", "exp2"): "3.11", ("statistics", "correlation"): "3.10",
    ("statistics", "linear_regression"): "3.10", ("logging", "getLevelNamesMapping"): "3.11",
}
#: whole modules that are new
NEW_MODULES = {"tomllib": "3.11"}
#: attributes of ``sys`` that are new
NEW_SYS = {"orig_argv": "3.10", "stdlib_module_names": "3.10", "exception": "3.11"}
#: builtins that are new
NEW_BUILTINS = {"aiter": "3.10", "anext": "3.10", "ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11"}
#: method names only newer versions have on builtin types (no 3.9 code calls these on anything else)
NEW_METHODS = {"bit_count": "3.10 (int.bit_count)", "hardlink_to": "3.10 (Path.hardlink_to)",
               "is_junction": "3.12 (Path.is_junction)", "with_segments": "3.12 (Path.with_segments)"}
#: keyword arguments that are new, per called function name (the last part of a dotted name)
NEW_KEYWORDS: dict[str, dict[str, str]] = {
    "zip": {"strict": "3.10"},
    "dataclass": {"slots": "3.10", "kw_only": "3.10", "match_args": "3.10", "weakref_slot": "3.11"},
    "field": {"kw_only": "3.10"},
    "bisect": {"key": "3.10"}, "bisect_left": {"key": "3.10"}, "bisect_right": {"key": "3.10"},
    "insort": {"key": "3.10"}, "insort_left": {"key": "3.10"}, "insort_right": {"key": "3.10"},
    "TemporaryDirectory": {"ignore_cleanup_errors": "3.10", "delete": "3.12"},
    "NamedTemporaryFile": {"delete_on_close": "3.12"},
    "glob": {"root_dir": "3.10", "dir_fd": "3.10", "include_hidden": "3.11"},
    "iglob": {"root_dir": "3.10", "dir_fd": "3.10", "include_hidden": "3.11"},
    "catch_warnings": {"action": "3.11", "category": "3.11", "lineno": "3.11", "append": "3.11"},
    "rmtree": {"onexc": "3.12"},
    "entry_points": {"group": "3.10", "name": "3.10"},
}
#: traceback functions and how many positional arguments Python 3.9 requires
TRACEBACK_ARITY = {"format_exception": 3, "print_exception": 3, "format_exception_only": 2}
#: names whose ``A | B`` can only be a type union (never arithmetic)
TYPE_NAMES = {"int", "float", "str", "bytes", "bool", "complex", "list", "dict", "set", "frozenset", "tuple",
              "type", "object", "Path", "Any", "Callable", "Sequence", "Mapping", "Iterable", "Iterator"}
OK_MARK = "# py39: ok"


@dataclass(frozen=True)
class Finding:
    """One line that needs Python >= 3.10 (``why`` says what and since when)."""

    path: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}"


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, else ``""``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _is_type_union(node: ast.AST) -> bool:
    """True when ``node`` is ``A | B`` whose operands can only be types (None, int, list[...]...)."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)):
        return False

    def typeish(operand: ast.AST) -> bool:
        if isinstance(operand, ast.Constant):
            return operand.value is None
        if isinstance(operand, ast.Subscript):
            return typeish(operand.value)
        if isinstance(operand, ast.BinOp):
            return _is_type_union(operand)
        return _dotted(operand).rsplit(".", 1)[-1] in TYPE_NAMES

    return typeish(node.left) or typeish(node.right)


def _has_union(annotation: ast.AST | None) -> bool:
    """True when an annotation (not a string) contains ``X | Y`` anywhere."""
    if annotation is None:
        return False
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(annotation))


def _annotations(tree: ast.AST) -> Iterator[ast.AST]:
    """Every annotation that Python evaluates when the module runs (function-local ones never are)."""
    def visit(node: ast.AST, in_function: bool) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = child.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                    if arg is not None and arg.annotation is not None:
                        yield arg.annotation
                if child.returns is not None:
                    yield child.returns
                yield from visit(child, True)
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, False)  # a class body's annotations are evaluated
            else:
                if isinstance(child, ast.AnnAssign) and not in_function:
                    yield child.annotation
                yield from visit(child, in_function)

    yield from visit(tree, False)


def _all_annotations(tree: ast.AST) -> Iterator[ast.AST]:
    """Every annotation in the module, evaluated or not."""
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def check_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings of one module's source (see the module docstring for what is looked for)."""
    tree = ast.parse(source, filename=path)
    lines = source.splitlines()
    found: list[Finding] = []

    def add(node: ast.AST, why: str) -> None:
        line = getattr(node, "lineno", 0)
        if 0 < line <= len(lines) and OK_MARK in lines[line - 1]:
            return
        found.append(Finding(path, line, why))

    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                 and any(a.name == "annotations" for a in n.names) for n in tree.body)
    if not future:
        for annotation in _annotations(tree):
            if _has_union(annotation):
                add(annotation, "'X | Y' annotation is evaluated at import without "
                                "'from __future__ import annotations' (3.10+)")

    # every annotation is either checked above (evaluated ones) or never evaluated (function-local)
    annotation_nodes = {id(n) for a in _all_annotations(tree) for n in ast.walk(a)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module in NEW_MODULES:
                add(node, f"module {node.module} needs {NEW_MODULES[node.module]}")
            for alias in node.names:
                since = NEW_IMPORTS.get((node.module, alias.name))
                if since:
                    add(node, f"{node.module}.{alias.name} needs {since}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in NEW_MODULES:
                    add(node, f"module {alias.name} needs {NEW_MODULES[alias.name]}")
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            module, _, name = dotted.rpartition(".")
            if (module, name) in NEW_IMPORTS:
                add(node, f"{dotted} needs {NEW_IMPORTS[(module, name)]}")
            elif module == "sys" and name in NEW_SYS:
                add(node, f"sys.{name} needs {NEW_SYS[name]}")
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS and isinstance(node.ctx, ast.Load):
            add(node, f"builtin {node.id} needs {NEW_BUILTINS[node.id]}")
        elif isinstance(node, ast.BinOp) and id(node) not in annotation_nodes and _is_type_union(node):
            add(node, f"'{ast.unparse(node)}' builds a type union at run time (3.10+)")
        if isinstance(node, ast.Call):
            found_call = _check_call(node)
            if found_call:
                add(node, found_call)
    # ast.walk reaches a nested union's inner BinOp too: report each line once per reason
    unique = {(f.line, f.why): f for f in found}
    return sorted(unique.values(), key=lambda f: f.line)


def _check_call(node: ast.Call) -> str | None:
    """Why a call needs 3.10+, or None."""
    name = _dotted(node.func)
    last = name.rsplit(".", 1)[-1] if name else (node.func.attr if isinstance(node.func, ast.Attribute) else "")
    starred = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
    if last in TRACEBACK_ARITY and (name.startswith("traceback.") or name == last) and not starred:
        given = len(node.args) + sum(k.arg in ("etype", "value", "tb") for k in node.keywords)
        if given < TRACEBACK_ARITY[last]:
            return (f"{last}() with {given} argument(s): 3.9 needs {TRACEBACK_ARITY[last]} "
                    f"(type, value{', traceback' if TRACEBACK_ARITY[last] == 3 else ''}); the short form is 3.10+")
    for keyword in node.keywords:
        since = NEW_KEYWORDS.get(last, {}).get(keyword.arg or "")
        if since:
            return f"{last}({keyword.arg}=...) needs {since}"
    if last in ("isinstance", "issubclass") and len(node.args) == 2 and _is_type_union_any(node.args[1]):
        return f"{last}() with a 'A | B' union needs 3.10 (use a tuple)"
    if isinstance(node.func, ast.Attribute) and node.func.attr in NEW_METHODS:
        return f".{node.func.attr}() needs {NEW_METHODS[node.func.attr]}"
    return None


def _is_type_union_any(node: ast.AST) -> bool:
    """``A | B`` as isinstance's second argument: a union whatever the operands are."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)


def check_paths(paths: Iterable[Path], root: Path | None = None) -> list[Finding]:
    """Findings of every ``.py`` file under ``paths`` (files or folders); paths shown relative to ``root``."""
    found: list[Finding] = []
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
        for file in files:
            shown = str(file.relative_to(root)) if root else str(file)
            found += check_source(file.read_text(encoding="utf-8"), shown)
    return found


def main(argv: list[str] | None = None) -> int:
    """Print the findings under the given paths; exit status 1 when there are any."""
    args = sys.argv[1:] if argv is None else argv
    found = check_paths([Path(a) for a in args or ["TextLesionSeg"]])
    for finding in found:
        print(finding)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
