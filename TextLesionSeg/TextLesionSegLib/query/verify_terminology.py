"""Check every SNOMED CT code of ``knowledge_table.json`` against 3D Slicer's terminology files.

Run: ``python -m TextLesionSegLib.query.verify_terminology CATEGORY_JSON ANATOMY_JSON`` with
Slicer's ``Modules/Loadable/Terminologies/Resources/SegmentationCategoryTypeModifier-DICOM-Master.json``
and ``AnatomicRegionAndModifier-DICOM-Master.json`` (``.term.json`` in newer Slicer). A code passes
when scheme, value *and* meaning appear together in the file. Exit code 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from .knowledge import knowledge_table

Code = tuple[str, str, str]


def _codes(node: Any) -> Iterator[Code]:
    """Every (scheme, value, meaning) anywhere in a terminology JSON tree."""
    if isinstance(node, dict):
        if {"CodingSchemeDesignator", "CodeValue", "CodeMeaning"} <= node.keys():
            yield (node["CodingSchemeDesignator"], str(node["CodeValue"]), node["CodeMeaning"])
        for value in node.values():
            yield from _codes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codes(value)


def table_codes() -> dict[str, list[tuple[str, Code]]]:
    """The table's codes by the Slicer file that must hold them: 'category' or 'anatomy'."""
    t = knowledge_table()
    category = [("category", tuple(t["category"]))]
    category += [(f"type {k}", tuple(v)) for k, v in t["type_codes"].items()]
    category += [(f"type of {e['name']}", tuple(e["type"])) for e in t["lesion_types"]]
    anatomy = [(f"region {k}", tuple(v)) for k, v in t["anatomic_regions"].items()]
    anatomy += [(f"region {k}", tuple(v)) for k, v in t["sub_location_regions"].items()]
    anatomy += [(f"modifier {k}", tuple(v)) for k, v in t["laterality"].items()]
    return {"category": category, "anatomy": anatomy}


def verify(category_json: Path, anatomy_json: Path) -> list[str]:
    """Names of the table's codes missing from the Slicer files (empty when all are found)."""
    known = {
        "category": set(_codes(json.loads(category_json.read_text(encoding="utf-8")))),
        "anatomy": set(_codes(json.loads(anatomy_json.read_text(encoding="utf-8")))),
    }
    return [f"{name}: {code}" for kind, items in table_codes().items() for name, code in items if code not in known[kind]]


def main(argv: list[str] | None = None) -> int:
    """Command line: print each missing code; exit 1 if any."""
    p = argparse.ArgumentParser(prog="python -m TextLesionSegLib.query.verify_terminology")
    p.add_argument("category_json", type=Path)
    p.add_argument("anatomy_json", type=Path)
    args = p.parse_args(argv)
    missing = verify(args.category_json, args.anatomy_json)
    n = sum(len(v) for v in table_codes().values())
    for line in missing:
        print("MISSING", line)
    print(f"{n - len(missing)}/{n} codes of the knowledge table found in Slicer's terminology files")
    return 1 if missing else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
