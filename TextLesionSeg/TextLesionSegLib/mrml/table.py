"""The lesion table: one row per measured lesion, CSV export, and a table node in the scene."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from ..pipeline.result import Result

#: Column keys and their headers (units in the header, values plain numbers).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("description", "Description"),
    ("segment", "Segment"),
    ("lesion", "Lesion"),
    ("volume_ml", "Volume (mL)"),
    ("longest_axial_mm", "Longest axial diameter (mm)"),
    ("perpendicular_axial_mm", "Perpendicular diameter (mm)"),
    ("longest_3d_mm", "Longest 3D diameter (mm)"),
    ("mean_hu", "Mean HU"),
    ("attributes", "Predicted attributes"),
    ("lesion_type", "Lesion type"),
    ("score", "Score"),
    ("centroid_ras", "Centroid RAS (mm)"),
    ("note", "Note"),
)


def _attributes_text(attributes: dict[str, Any]) -> str:
    parts = []
    for name, value in attributes.items():
        # Predicted attributes may come as (value, similarity) pairs.
        shown = value[0] if isinstance(value, (list, tuple)) and value else value
        parts.append(f"{name}: {shown}")
    return "; ".join(parts)


def lesion_rows(result: Result, segment_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of the lesion table; a segment without lesions gets one row with empty numbers.

    ``segment_names`` are the names the segments got in Slicer (they may differ from the
    description when a name was already taken).
    """
    rows: list[dict[str, Any]] = []
    for index, segment in enumerate(result.segments):
        name = segment_names[index] if segment_names else segment.name
        common = {
            "description": segment.query.text if segment.query else segment.name,
            "segment": name,
            "attributes": _attributes_text(segment.predicted_attributes),
            "lesion_type": segment.lesion_type or "",
            "score": round(float(segment.score), 3),
            # an empty segment on purpose: the described lesion is not in the scan, and why
            "note": "" if segment.found else str(segment.selection.get("message") or "not found"),
        }
        if not segment.lesions:
            rows.append({**common, "lesion": "", "volume_ml": "", "longest_axial_mm": "",
                         "perpendicular_axial_mm": "", "longest_3d_mm": "", "mean_hu": "",
                         "centroid_ras": ""})
        for lesion in segment.lesions:
            rows.append({
                **common,
                "lesion": lesion.label,
                "volume_ml": round(lesion.volume_ml, 2),
                "longest_axial_mm": round(lesion.longest_axial_mm, 1),
                "perpendicular_axial_mm": round(lesion.perpendicular_axial_mm, 1),
                "longest_3d_mm": round(lesion.longest_3d_mm, 1),
                "mean_hu": round(lesion.mean_hu, 1),
                "centroid_ras": tuple(round(float(c), 2) for c in lesion.centroid_ras),
            })
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write the table as CSV (UTF-8, header row); returns the path."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([header for _, header in COLUMNS])
        for row in rows:
            writer.writerow([cell_text(row.get(key, "")) for key, _ in COLUMNS])
    return path


def table_cells(row: dict[str, Any]) -> list[str]:
    """The texts of one row, in :data:`COLUMNS` order."""
    return [cell_text(row.get(key, "")) for key, _ in COLUMNS]


def cell_text(value: Any) -> str:
    """How a value is written in the table and the CSV (tuples as space-separated numbers)."""
    if isinstance(value, tuple):
        return " ".join(f"{v:g}" for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def fill_table_node(table_node: Any, rows: Sequence[dict[str, Any]]) -> Any:
    """Write rows into a ``vtkMRMLTableNode`` (string columns), so the table saves with the scene."""
    import vtk

    table = vtk.vtkTable()
    for _, header in COLUMNS:
        column = vtk.vtkStringArray()
        column.SetName(header)
        column.SetNumberOfValues(len(rows))
        table.AddColumn(column)
    for r, row in enumerate(rows):
        for c, (key, _) in enumerate(COLUMNS):
            table.GetColumn(c).SetValue(r, cell_text(row.get(key, "")))
    table_node.SetAndObserveTable(table)
    return table_node
