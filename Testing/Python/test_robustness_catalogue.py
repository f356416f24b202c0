"""``docs/robustness.md`` names only tests that exist, and every row names a test or says why not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "robustness.md"
TESTS = Path(__file__).resolve().parent
REFERENCE = re.compile(r"`(test_[A-Za-z0-9_]+\.py)::(test_[A-Za-z0-9_]+)`")


def _rows() -> list[str]:
    """Table rows of the catalogue (header and separator rows excluded)."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not line.startswith("|---") and not line.startswith("| Failure") \
                and not line.startswith("| Exit code"):
            rows.append(line)
    return rows


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_catalogue_exists_and_covers_issue_10_sections():
    text = DOC.read_text(encoding="utf-8")
    for section in ("## Inputs", "## Text", "## Outputs", "## Models and weights", "## Runtime", "## The contract"):
        assert section in text, section


@pytest.mark.parametrize("row", _rows() if DOC.exists() else [], ids=lambda r: r.split("|")[1].strip()[:40])
def test_every_row_names_existing_tests_or_says_it_is_not_handled(row):
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    if len(cells) == 3 and cells[0].isdigit():  # the exit-code table
        return
    references = REFERENCE.findall(row)
    if not references:
        assert "not handled yet" in row or "not tested here" in row, f"row names no test: {row}"
        return
    for file_name, test_name in references:
        path = TESTS / file_name
        assert path.is_file(), f"{file_name} (named in docs/robustness.md) does not exist"
        assert test_name in _test_names(path), f"{file_name}::{test_name} (named in docs/robustness.md) does not exist"
