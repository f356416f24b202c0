"""Any Unicode description, of any length, segments and writes files whose segment names every
reader gets back: slicerio, SimpleITK and (when ``slicer-core`` is importable) Slicer's own
segmentation storage node; the NIfTI labelmap (with its ``.labels.csv`` sidecar naming each value,
read back by Python's csv and Slicer's color table storage node), JSON report and PNG overlay are
written too, all of a run's files together or none, and the terminal never receives a control
character.

What the readers do with NRRD header values (``test_what_each_reader_makes_of_header_values``)
is why names are escaped (``output_names.header_text``): ITK and Slicer read UTF-8 but slicerio drops
every non-ASCII byte, Teem turns ``\\n`` into a line break and slicerio does not.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_engine_helpers import grid_image
from TextLesionSegLib.cli import main
from TextLesionSegLib.cli.segment import say
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.pipeline import names as output_names
from TextLesionSegLib.pipeline import outputs
from TextLesionSegLib.pipeline import run as pipeline_run
from TextLesionSegLib.pipeline.result import Result, SegmentResult
from TextLesionSegLib.query.types import LesionQuery
from TextLesionSegLib.worker import testing as tiny

try:
    import slicer

    from test_mrml_support import register_converter_rules
except ImportError:  # slicer-core absent: the other two readers are still checked
    slicer = None

LESION = "round hyperdense mass in the right lung"
CHINESE = "左肺上叶不规则软组织肿块，边缘毛刺"
LONG_500 = ("Läsion mit unscharfem Rand, patient’s lesion – 2 cm, " * 10)[:500]
EXAMPLES = {
    "umlaut": "Läsion mit unscharfem Rand",
    "curly apostrophe, en dash": "patient’s lesion – 2 cm",
    "chinese": CHINESE,
    "500 characters": LONG_500,
    "newline": "nodule\nin the left lung",
    "escape sequence": "mass \x1b[31m red \x1b[0m",
}
#: characters that broke or could break a header, a terminal or a plot
SPECIAL = list("\x00\x1b\n\r\t\x0b\x85\u2028\u202e\u200f\u0301\ufeff\U0001f600\\|$~^:=\ud800\udcff左ä\x7f\x9b\",;")
ANY_CHAR = st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL))
ANY_TEXT = st.one_of(st.text(ANY_CHAR, max_size=60), st.text(ANY_CHAR, min_size=200, max_size=3000))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_name(name: str, number: int = 1) -> str:
    """The name the outputs must hold, written independently of output_names.clean_name: white space
    (line breaks, tabs) -> one space; other control characters, lone surrogates -> U+FFFD."""
    out = []
    for ch in name:
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cs"):
            out.append("\ufffd")
        else:
            out.append(ch)
    return " ".join("".join(out).split()) or f"Lesion {number}"


def expected_tag(text: str) -> str:
    text = "".join("\ufffd" if unicodedata.category(ch) == "Cs" else ch for ch in text)
    return text if len(text) <= output_names.MAX_TAG_CHARS else text[: output_names.MAX_TAG_CHARS - 1] + "…"


# ---- the three readers --------------------------------------------------------------------

def names_by_slicerio(path: Path) -> tuple[list[str], list[dict]]:
    import slicerio

    segments = slicerio.read_segmentation(str(path), skip_voxels=True)["segments"]
    return [s["name"] for s in segments], [s.get("tags", {}) for s in segments]


def names_by_itk(path: Path) -> list[str]:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    names = []
    while reader.HasMetaDataKey(f"Segment{len(names)}_Name"):
        names.append(reader.GetMetaData(f"Segment{len(names)}_Name"))
    return names


def read_by_slicer(scene: Any, node_class: str, storage_class: str, path: Path) -> Any:
    """A new ``node_class`` node of ``scene`` filled from ``path`` by Slicer's own ``storage_class``."""
    node = scene.AddNewNodeByClass(node_class, "read")
    storage = getattr(slicer, storage_class)()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    return node


def names_by_slicer(path: Path) -> tuple[list[str], list[str | None]] | None:
    """Names (and Query tags) as Slicer's vtkMRMLSegmentationStorageNode reads them; None without slicer-core."""
    if slicer is None:
        return None
    import vtk

    register_converter_rules()
    scene = slicer.vtkMRMLScene()
    try:
        node = read_by_slicer(scene, "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode", path)
        segmentation = node.GetSegmentation()
        names, queries = [], []
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(index)
            names.append(segment.GetName())
            value = vtk.reference("")
            queries.append(str(value) if segment.GetTag("TextLesionSeg.Query", value) else None)
        return names, queries
    finally:
        scene.Clear(True)


def label_names_by_csv(path: Path) -> dict[int, str]:
    """The labelmap sidecar's names as Python's csv module reads them (backslash escapes, as VTK)."""
    import csv

    with path.open(encoding="utf-8", newline="") as f:  # strict UTF-8
        return {int(row["LabelValue"]): row["Name"] for row in csv.DictReader(f, escapechar="\\")}


def label_names_by_slicer(path: Path) -> dict[int, str] | None:
    """The sidecar's names as Slicer's vtkMRMLColorTableStorageNode reads them; None without slicer-core."""
    if slicer is None:
        return None
    scene = slicer.vtkMRMLScene()
    try:
        table = read_by_slicer(scene, "vtkMRMLColorTableNode", "vtkMRMLColorTableStorageNode", path)
        return {n: table.GetColorName(n) for n in range(1, table.GetNumberOfColors())}
    finally:
        scene.Clear(True)


def assert_every_output_names(paths: dict[str, Path], names: list[str], queries: list[str] | None = None) -> None:
    """Every file of a run holds ``names`` (the .seg.nrrd through all three readers)."""
    seg = paths["output"]
    by_slicerio, tags = names_by_slicerio(seg)
    by_itk = names_by_itk(seg)
    assert by_slicerio == by_itk  # one ASCII string for every reader
    assert all(n.isascii() and n.isprintable() for n in by_itk)
    assert [output_names.unescape_header_text(n) for n in by_slicerio] == names
    by_slicer = names_by_slicer(seg)
    if by_slicer is not None:
        assert by_slicer[0] == by_itk
        assert [t.get("TextLesionSeg.Query") for t in tags] == by_slicer[1]
    if queries is not None:
        assert [output_names.unescape_header_text(t["TextLesionSeg.Query"]) for t in tags] == [expected_tag(q) for q in queries]
    if "report" in paths:
        report = json.loads(paths["report"].read_text(encoding="utf-8"))  # strict UTF-8: no lone surrogate
        assert [s["name"] for s in report["segments"]] == names
        assert [s["label_value"] for s in report["segments"]] == list(range(1, len(names) + 1))
    if "labelmap" in paths:
        values = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(paths["labelmap"]))))
        assert set(values.tolist()) <= set(range(len(names) + 1)) and values.max() >= 1
        sidecar = outputs.label_names_path(paths["labelmap"])  # names each value, for Slicer too
        assert label_names_by_csv(sidecar) == dict(enumerate(names, start=1))  # the real names
        by_slicer_table = label_names_by_slicer(sidecar)
        if by_slicer_table is not None:
            assert by_slicer_table == dict(enumerate(names, start=1))
    if "overlay" in paths:
        assert paths["overlay"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- what the readers do (why the names are escaped) --------------------------------------

def _file_with_raw_header_values(path: Path, values: list[bytes]) -> Path:
    """A .seg.nrrd whose Segment<n>_Name lines hold ``values`` byte for byte."""
    import slicerio

    seg = {"voxels": np.zeros((4, 4, 4), np.uint8), "ijkToLPS": np.eye(4), "encoding": "raw",
           "segments": [{"id": f"Segment_{n + 1}", "labelValue": n + 1, "layer": 0, "name": f"PLACEHOLDER{n:03d}",
                         "color": [1.0, 0.0, 0.0]} for n in range(len(values))]}
    seg["voxels"][0, 0, 0] = 1
    slicerio.write_segmentation(str(path), seg)
    data = path.read_bytes()
    for n, value in enumerate(values):
        data = data.replace(f"PLACEHOLDER{n:03d}".encode(), value, 1)
    path.write_bytes(data)
    return path


def test_what_each_reader_makes_of_header_values(tmp_path):
    """The facts behind output_names.header_text: raw UTF-8 is read by ITK and Slicer but not by
    slicerio; Teem un-escapes '\\\\n' and '\\\\\\\\' and nothing else, slicerio nothing; long values are
    fine everywhere; NUL cuts the value for ITK and Slicer; a raw CR breaks the header for ITK
    (and aborts Slicer's process, so it is not tried here)."""
    raw = ["Läsion".encode(), CHINESE.encode(), b"a\\nb", b"x\\\\y", b"L\\u00e4", b"A" * 5000, b"a\x00b", b"a|b:=c"]
    path = _file_with_raw_header_values(tmp_path / "raw.seg.nrrd", raw)
    by_itk = names_by_itk(path)
    by_slicerio, _ = names_by_slicerio(path)
    assert by_itk == ["Läsion", CHINESE, "a\nb", "x\\y", "L\\u00e4", "A" * 5000, "a", "a|b:=c"]
    assert by_slicerio == ["Lsion", "", "a\\nb", "x\\\\y", "L\\u00e4", "A" * 5000, "a\x00b", "a|b:=c"]
    by_slicer = names_by_slicer(path)
    if by_slicer is not None:
        assert by_slicer[0] == by_itk
    # slicerio (pynrrd) cannot write a non-ASCII header value at all: what failed every such run
    import slicerio

    with pytest.raises(UnicodeEncodeError):
        slicerio.write_segmentation(str(tmp_path / "u.seg.nrrd"), {
            "voxels": np.ones((2, 2, 2), np.uint8), "ijkToLPS": np.eye(4), "encoding": "raw",
            "segments": [{"id": "S1", "labelValue": 1, "layer": 0, "name": "Läsion", "color": [1.0, 0.0, 0.0]}]})
    cr = _file_with_raw_header_values(tmp_path / "cr.seg.nrrd", [b"a\rb"])
    with pytest.raises(RuntimeError):
        names_by_itk(cr)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_header_escape_is_reversible_and_the_same_for_every_reader(text):
    escaped = output_names.header_text(text)
    assert escaped.isascii() and escaped.isprintable()
    # every backslash starts \u or \U: Teem's two escapes (\\ and \n) can never appear
    assert all(escaped[i + 1] in "uU" for i, ch in enumerate(escaped) if ch == "\\")
    assert output_names.unescape_header_text(escaped) == text
    clean = output_names.clean_name(text)
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in clean) and "\n" not in clean
    assert output_names.clean_name(clean) == clean


# ---- writers: any name, straight from the API --------------------------------------------

def _result(names: list[str]) -> Result:
    img = grid_image((6, 10, 10), (1.0, 1.0, 2.0), np.eye(3), (0.0, 0.0, 0.0), fill=-1000.0)
    img.array[2:4, 3:7, 3:7] = 60.0
    segments = []
    for n, name in enumerate(names):
        mask = np.zeros(img.array.shape, np.uint8)
        mask[2:4, 3 + n % 3: 5 + n % 3, 3:5] = 1
        segments.append(SegmentResult(name=name, mask=mask, query=LesionQuery(text=name), score=0.5,
                                      color=outputs.segment_color(n)))
    return Result(image=img, segments=segments, model_name="tiny", model_version="0.0.1")


def _paths(folder: Path) -> dict[str, Path]:
    return {"output": folder / "o.seg.nrrd", "labelmap": folder / "o.nii.gz", "report": folder / "o.json",
            "overlay": folder / "o.png"}


def _write_and_check(folder: Path, names: list[str]) -> Result:
    result = _result(names)
    paths = _paths(folder)
    assert outputs.write_all(result, **paths) == [paths["output"], paths["labelmap"], folder / "o.labels.csv",
                                                  paths["report"], paths["overlay"]]
    expected = [expected_name(n, i) for i, n in enumerate(names, start=1)]
    assert [s.name for s in result.segments] == expected
    assert_every_output_names(paths, expected, queries=names)
    controls = [n for n, name in enumerate(names, 1) if any(unicodedata.category(c) in ("Cc", "Cs") and not c.isspace()
                                                             for c in name)]
    assert [w for w in result.warnings if "U+FFFD" in w] == [
        f"segment {n}: control characters in the name were replaced by U+FFFD: '{expected[n - 1]}'" for n in controls]
    report = json.loads(paths["report"].read_text(encoding="utf-8"))
    assert report["warnings"] == result.warnings  # the warning is in the report too
    return result


@FAST
@given(st.lists(ANY_TEXT, min_size=1, max_size=3))
def test_any_name_reaches_every_output_and_reader(tmp_path_factory, names):
    _write_and_check(tmp_path_factory.mktemp("w"), names)


@pytest.mark.parametrize("label", list(EXAMPLES))
def test_example_names_reach_every_output_and_reader(tmp_path, label):
    text = EXAMPLES[label]
    result = _write_and_check(tmp_path, [text])
    name = result.segments[0].name
    if label == "newline":
        assert name == "nodule in the left lung"
    elif label == "escape sequence":
        assert name == "mass \ufffd[31m red \ufffd[0m" and "\x1b" not in name
    else:
        assert name == text  # kept whole: any script, any length


@pytest.mark.parametrize("name", ["$$", "$\\frac$", "cost $5", "\\", "a\x00b", "\ud800"])
def test_names_matplotlib_or_utf8_would_choke_on(tmp_path, name):
    """'$$' and '$\\\\frac$' raised in matplotlib's math parser, a lone surrogate in UTF-8."""
    _write_and_check(tmp_path, [name, LESION])


@pytest.mark.parametrize("name", ['"quoted", with a comma', 'C:\\scans\\"b"\\', "\\n is not a line break", "a;b\\"])
def test_names_a_csv_reader_would_choke_on(tmp_path, name):
    """The labelmap's sidecar: VTK's CSV reader (Slicer) un-escapes backslashes and cannot hold a
    bare or doubled quote; both come back as they were."""
    _write_and_check(tmp_path, [name])
    text = (tmp_path / "o.labels.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith('"LabelValue","Name","Color_R","Color_G","Color_B","Color_A"')


def test_blank_name_gets_the_same_fallback_everywhere(tmp_path):
    _write_and_check(tmp_path, [" \n\t ", LESION])


# ---- the whole run: parse -> segment (tiny real model) -> write -> read back -------------

@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unicode-site")
    registry = tiny.write_test_registry(folder / "site", {"tiny": {}})
    ct = tiny.write_phantom(folder / "ct.nrrd", size=24)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(registry))
        yield {"ct": ct}


def _cli(ct: Path, texts: list[str], folder: Path, *extra: str) -> tuple[int, str, str, dict[str, Path]]:
    paths = _paths(folder)
    argv = ["segment", str(ct), *(f"--text={t}" for t in texts), "--model", "tiny", "--device", "cpu", "--quiet",
            *extra]
    for key, path in paths.items():
        argv += [f"--{key}", str(path)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue(), paths


def _no_control_characters(text: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text.replace("\n", ""))


def _check_run(tiny_site, texts: list[str], folder: Path, must_segment: bool) -> int:
    rc, out, err, paths = _cli(tiny_site["ct"], texts, folder)
    assert _no_control_characters(out) and _no_control_characters(err), (out, err)
    assert "Traceback" not in err
    if rc == 2 and not must_segment:  # the parser found no lesion: one line, nothing written
        assert len(err.strip().splitlines()) == 1 and list(folder.iterdir()) == [], err
        return rc
    assert rc == 0, err
    queries, _ = pipeline_run.parse_queries(texts)
    names = [expected_name(pipeline_run._segment_name(q), n) for n, q in enumerate(queries, start=1)]
    assert_every_output_names(paths, names)
    for name in names:
        assert output_names.display_text(name) in out  # the summary names each segment
    return rc


@FAST
@given(text=ANY_TEXT)
def test_any_description_after_a_lesion_segments_and_reads_back(tiny_site, tmp_path_factory, text):
    _check_run(tiny_site, [f"{LESION} {text}"], tmp_path_factory.mktemp("run"), must_segment=True)


@FAST
@given(text=ANY_TEXT)
def test_any_description_at_all_is_exit_0_or_2_never_a_crash(tiny_site, tmp_path_factory, text):
    if not text.strip():
        text = "x" + text
    _check_run(tiny_site, [text], tmp_path_factory.mktemp("run"), must_segment=False)


@pytest.mark.parametrize("label", list(EXAMPLES))
def test_example_descriptions_segment_and_read_back(tiny_site, tmp_path, label):
    """Each example after a lesion the parser knows must segment; alone it must segment or be
    refused as a text the parser did not understand (exit 2), never fail in a writer (exit 1)."""
    text = EXAMPLES[label]
    for folder in ("after", "alone"):
        (tmp_path / folder).mkdir()
    _check_run(tiny_site, [f"{LESION}, {text}"], tmp_path / "after", must_segment=True)
    _check_run(tiny_site, [text], tmp_path / "alone", must_segment=False)


def test_several_descriptions_with_control_characters(tiny_site, tmp_path):
    rc = _check_run(tiny_site, [f"{LESION} \x1b[2J\x07", f"cyst in the left kidney\x00 {CHINESE}"], tmp_path,
                    must_segment=True)
    assert rc == 0


# ---- terminal ---------------------------------------------------------------------------

def test_terminal_lines_never_carry_control_characters(tiny_site, tmp_path):
    folder = tmp_path / "o\x1b[2J"  # even an output folder named with an escape sequence
    folder.mkdir()
    rc, out, err, _ = _cli(tiny_site["ct"], [f"{LESION} \x1b[31m red\x9b2J \x07"], folder)
    assert rc == 0, err
    assert _no_control_characters(out) and _no_control_characters(err), (out, err)
    assert "\ufffd[31m red\ufffd2J \ufffd" in out and "U+FFFD" in err  # shown, and said


def test_an_error_quoting_the_text_carries_no_control_characters(tiny_site, tmp_path):
    rc, out, err, _ = _cli(tiny_site["ct"], ["\x1b]0;pwned\x07 hello \x1b[31m"], tmp_path)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert _no_control_characters(err) and "\ufffd]0;pwned\ufffd hello" in err, err
    assert list(tmp_path.iterdir()) == []
    rc, out, err, _ = _cli(tiny_site["ct"], [LESION], tmp_path, "--bogus\x1b[31m")  # argparse's error line
    assert rc == 2 and _no_control_characters(err) and "--bogus\ufffd[31m" in err, err


def test_say_survives_a_terminal_that_cannot_encode_the_name():
    """A cp1252 console or PYTHONIOENCODING=ascii: escapes instead of a UnicodeEncodeError at the very end."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    say(f"  {CHINESE}: 1 lesion(s), Läsion 😀", stream)
    stream.flush()
    assert raw.getvalue().decode("ascii") == "  " + CHINESE.encode("ascii", "backslashreplace").decode() \
        + ": 1 lesion(s), L\\xe4sion \\U0001f600\n"


# ---- all outputs of a run together or none ----------------------------------------------

def _user_files(folder: Path, paths: dict[str, Path], which: tuple[str, ...]) -> dict[Path, bytes]:
    kept = {}
    for key in which:
        paths[key].write_bytes(f"user's own {key}".encode())
        kept[paths[key]] = paths[key].read_bytes()
    return kept


def _assert_folder_is(folder: Path, kept: dict[Path, bytes]) -> None:
    assert sorted(folder.iterdir()) == sorted(kept), sorted(p.name for p in folder.iterdir())  # no temporaries
    for path, data in kept.items():
        assert path.read_bytes() == data


@pytest.mark.parametrize("failing", ["write_labelmap", "write_label_names", "write_report", "write_overlay_png"])
def test_a_late_write_failure_leaves_no_output_and_the_old_files(tmp_path, monkeypatch, failing):
    paths = _paths(tmp_path)
    kept = _user_files(tmp_path, paths, ("output", "report"))  # --overwrite of an earlier run's files

    def disk_full(result, path, overwrite=False):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, failing, disk_full)
    with pytest.raises(InputError, match="No space left"):
        outputs.write_all(_result([EXAMPLES["umlaut"]]), overwrite=True, **paths)
    _assert_folder_is(tmp_path, kept)


def test_a_failed_rename_puts_back_what_was_there(tmp_path, monkeypatch):
    """The third rename fails: the first (an overwrite) gets the user's file back, the second
    (a new file) goes, the third keeps the user's file."""
    paths = _paths(tmp_path)
    kept = _user_files(tmp_path, paths, ("output", "report"))
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == paths["report"]:
            raise OSError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError, match="Permission denied"):
        outputs.write_all(_result([EXAMPLES["chinese"]]), overwrite=True, **paths)
    monkeypatch.undo()
    _assert_folder_is(tmp_path, kept)


def test_an_undo_that_fails_too_keeps_the_users_file_and_says_where(tmp_path, monkeypatch):
    """The report's rename fails, and so does putting the user's old .seg.nrrd back: that file is
    kept under its backup name, which the error gives, never deleted."""
    paths = _paths(tmp_path)
    kept = _user_files(tmp_path, paths, ("output", "report"))
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == paths["report"] or (Path(dst) == paths["output"] and ".old" in Path(src).name):
            raise OSError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError, match="Permission denied") as info:
        outputs.write_all(_result([LESION]), overwrite=True, **paths)
    monkeypatch.undo()
    message = str(info.value)
    assert str(paths["report"]) in message and f"{paths['output']} is kept as " in message
    backup = Path(message.split(" is kept as ")[1].rstrip(")"))
    assert backup.read_bytes() == kept[paths["output"]]
    assert paths["report"].read_bytes() == kept[paths["report"]]  # the failed rename left it as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([backup.name, "o.seg.nrrd", "o.json"])


def test_an_output_appearing_during_the_run_is_never_clobbered(tmp_path, monkeypatch):
    paths = _paths(tmp_path)
    real = outputs.write_report

    def report_then_someone_writes_the_overlay(result, path, overwrite=False):
        real(result, path, overwrite=overwrite)
        paths["overlay"].write_bytes(b"appeared meanwhile")

    monkeypatch.setattr(outputs, "write_report", report_then_someone_writes_the_overlay)
    with pytest.raises(InputError, match="exists"):
        outputs.write_all(_result([LESION]), **paths)
    _assert_folder_is(tmp_path, {paths["overlay"]: b"appeared meanwhile"})


def test_cli_refuses_an_existing_labelmap_sidecar_before_the_model_runs(tiny_site, tmp_path):
    (tmp_path / "o.labels.csv").write_bytes(b"user's own table")
    rc, out, err, _ = _cli(tiny_site["ct"], [LESION], tmp_path)
    assert rc == 2 and "o.labels.csv" in err and "exists" in err and len(err.strip().splitlines()) == 1, err
    _assert_folder_is(tmp_path, {tmp_path / "o.labels.csv": b"user's own table"})
    rc, out, err, _ = _cli(tiny_site["ct"], [LESION], tmp_path, "--overwrite")
    assert rc == 0 and "o.labels.csv" in out, err
    assert label_names_by_csv(tmp_path / "o.labels.csv") == {1: pipeline_run._segment_name(LesionQuery(text=LESION))}


def test_cli_late_failure_keeps_the_users_files(tiny_site, tmp_path, monkeypatch):
    paths = _paths(tmp_path)
    kept = _user_files(tmp_path, paths, ("output", "labelmap", "report", "overlay"))

    def broken(result, path, overwrite=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_overlay_png", broken)
    rc, out, err, _ = _cli(tiny_site["ct"], [EXAMPLES["umlaut"] + " " + LESION], tmp_path, "--overwrite")
    assert rc == 2 and "No space left" in err and "o.png" in err, err
    _assert_folder_is(tmp_path, kept)
