"""``textlesionseg parse``: JSON shape, --file, bad files (issue 4 item 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from TextLesionSegLib.cli import main
from TextLesionSegLib.query import ATTRIBUTE_NAMES

FIELDS = {"text", "organ", "side", "sub_location", "shape", "density", "density_variation", "surface", "enhancement",
          "relation", "related_organ", "specific_features", "size_mm", "count", "lesion_type", "uncertain",
          "unknown_words", "inferred"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | None, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_parse_text_prints_one_entry_per_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = _run(["parse", "2 cm round cyst in the left kidney; small hyperdense nodule in liver segment VII",
                         "no lesion"], capsys)
    assert code == 0
    first, second = doc["inputs"]
    assert first["text"].startswith("2 cm round cyst") and len(first["queries"]) == 2
    q = first["queries"][0]
    assert FIELDS <= set(q)
    assert q["density"] is None and q["inferred"]["density"] == "hypodense"  # null where unasserted
    assert (q["organ"], q["side"], q["shape"], q["size_mm"]) == ("kidney", "left", "round-like", [20.0])
    assert second["queries"] == [] and "negat" in second["message"]


def test_parse_file_one_description_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "reports.txt"
    f.write_text("round cyst in the left kidney\n\nspiculated nodule in the RUL\nhypodense lesion in segment VI\n",
                 encoding="utf-8")
    code, doc, _ = _run(["parse", "--file", str(f), "--phrases"], capsys)
    assert code == 0
    assert [e["queries"][0]["organ"] for e in doc["inputs"]] == ["kidney", "lung", "liver"]  # blank line skipped
    q = doc["inputs"][1]["queries"][0]
    assert len(q["phrases"]) == len(ATTRIBUTE_NAMES) and q["phrases"][0] == "Location: right upper lobe of the lung"
    assert q["terminology"]["anatomicRegion"][2] == "Upper lobe of lung"


@pytest.mark.parametrize("setup, needle", [
    (lambda p: p / "missing.txt", "not found"),
    (lambda p: p, "not a file"),
    (lambda p: (p / "latin1.txt", (p / "latin1.txt").write_bytes(b"l\xe9sion r\xe9nale\n"))[0], "not UTF-8"),
])
def test_bad_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup, needle: str) -> None:
    code, doc, err = _run(["parse", "--file", str(setup(tmp_path))], capsys)
    assert code == 2 and doc is None
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_no_input_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = _run(["parse"], capsys)
    assert code == 2 and "nothing to parse" in err


def test_console_script_with_stdin(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "TextLesionSegLib.cli", "parse", "--file", "-", "--indent", "0"],
        input="Lésion hypodense in the left kidney\n", capture_output=True, text=True, encoding="utf-8", timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["inputs"][0]["queries"][0]["side"] == "left"
    assert proc.stdout.count("\n") == 1  # --indent 0: one line
