"""No code path of the package unpickles data: ``torch.load`` only with ``weights_only=True``, and
no ``pickle``/``joblib``/``numpy allow_pickle`` loading (issue 10 "Models and weights")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "TextLesionSeg" / "TextLesionSegLib"


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            yield node, owner, name


def _keyword(node: ast.Call, key: str):
    for kw in node.keywords:
        if kw.arg == key:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expression>"
    return None


def test_every_load_in_the_package_refuses_pickles():
    problems = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, "package not found"
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, owner, name in _calls(tree):
            where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
            if owner == "torch" and name == "load" and _keyword(node, "weights_only") is not True:
                problems.append(f"{where}: torch.load without weights_only=True")
            if owner in ("pickle", "cPickle", "dill", "joblib") and name in ("load", "loads"):
                problems.append(f"{where}: {owner}.{name} unpickles data")
            if name == "load" and _keyword(node, "allow_pickle") not in (None, False):
                problems.append(f"{where}: numpy load with allow_pickle")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_a_violation():
    """Guard against a scan that can never fail."""
    tree = ast.parse("import torch\nx = torch.load('a.pt')\ny = torch.load('b.pt', weights_only=True)\n")
    flagged = [n.lineno for n, owner, name in _calls(tree) if owner == "torch" and name == "load"
               and _keyword(n, "weights_only") is not True]
    assert flagged == [2]
