"""Issue 19: Chinese descriptions read into the same structured query (canonical values, SNOMED
codes unchanged), unknown characters flagged, the preview in Chinese, the user's words kept."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from TextLesionSegLib.query import parse_text, terminology_for
from TextLesionSegLib.query.chinese import is_chinese, tokenize
from TextLesionSegLib.query.types import LesionQuery


def one(text: str) -> LesionQuery:
    out = parse_text(text)
    assert len(out.queries) == 1, (text, out.message, [q.text for q in out.queries])
    return out.queries[0]


def test_the_issue_example_is_read_not_refused() -> None:
    q = one("左肺上叶不规则软组织肿块，边缘毛刺")
    assert (q.organ, q.side, q.sub_location, q.shape, q.surface) == ("lung", "left", "left upper lobe", "irregular",
                                                                   "ill-defined")
    assert q.density == "isodense" and "spiculation" in q.specific_features and q.language == "zh"
    assert q.text == "左肺上叶不规则软组织肿块，边缘毛刺" and q.unknown_words == []


def test_same_canonical_values_and_codes_as_english() -> None:
    zh = one("增强CT，右肾可见类圆形低密度影，内部均匀，边缘清晰，与周围器官关系不密切。")
    en = one("Contrast-enhanced CT: a round hypodense lesion in the right kidney, homogeneous, with well-defined "
             "margins, not closely related to surrounding organs.")
    for name in ("organ", "side", "shape", "density", "density_variation", "surface", "enhancement", "relation"):
        assert getattr(zh, name) == getattr(en, name), name
    assert terminology_for(zh) == terminology_for(en)  # SNOMED CT codes unchanged


@pytest.mark.parametrize("text, field, value", [
    ("肝S7段见一约2.3×1.8cm低密度灶", "sub_location", "segment VII"),
    ("肝Ⅶ段低密度灶", "sub_location", "segment VII"),
    ("肝右叶可见片状低密度灶", "sub_location", "right lobe"),
    ("胰头可见低密度肿块", "sub_location", "head"),
    ("乙状结肠壁增厚，浆膜面毛糙", "surface", "ill-defined"),
    ("右肾囊肿，边界清楚", "surface", "well-defined"),
    ("肝内低密度灶，边缘较模糊", "surface", "ill-defined"),
    ("左肾肿块，密度不均匀", "density_variation", "heterogeneous"),
    ("双肺多发结节", "side", "bilateral"),
    ("右肾见2个囊肿，较大者约3.1×2.8cm", "count", 2),
    ("右肾见2个囊肿，较大者约3.1×2.8cm", "size_mm", [31.0, 28.0]),
    ("胰尾可见低密度灶，不除外胰腺癌", "uncertain", True),
    ("平扫CT，右肾见一结节", "enhancement", "non-contrast"),
    ("肠壁增厚，周围脂肪间隙模糊", "relation", "closely related"),  # the fat plane, as "loss of the fat plane"
    ("乙状结肠肠壁增厚，周围脂肪间隙清晰", "relation", "not closely related"),
    ("肠壁增厚，周围脂肪间隙模糊", "specific_features", ["wall thickening"]),  # 脂肪 of 脂肪间隙 is not "fat"
    ("肠壁增厚，周围脂肪间隙模糊", "unknown_words", []),
    # session 8, in-sample misses read (docs/query.md): the head named first, in the long form 胰腺头
    ("增强CT，胰腺头、胰颈部见不规则低亮度灶", "sub_location", "head"),
    ("肝内可见数个大片混杂低密度影", "shape", "irregular"),  # 大片: a large patch, as 片状
    ("肝内可见多个（左右各1）片状低亮度灶", "side", "bilateral"),  # one in each lobe: both lobes
    ("肝左右叶多发低密度灶", "sub_location", None),  # both lobes, not the right lobe of 右叶
    ("肝左右叶多发低密度灶", "side", "bilateral"),
    ("右肾见结节，大小约2cm左右", "side", "right"),  # 左右 after a size is "about", not a side
    ("两肾多发囊肿", "side", "bilateral"),  # both kidneys, as 双肾
    ("胰腺体尾部不规则低密度肿块", "sub_location", "body"),  # as 胰体尾: the body read first
    ("胰腺体尾部不规则低密度肿块", "unknown_words", []),
    ("肝右叶S7段见低密度灶", "sub_location", "segment VII"),  # the segment refines its lobe
    ("肝左叶S7段见低密度灶", "sub_location", "left lobe"),  # not a segment of that lobe: the first place
])
def test_chinese_fields(text: str, field: str, value: object) -> None:
    assert getattr(one(text), field) == value


def test_relation_and_own_parenchyma() -> None:
    q = one("胰头可见低密度肿块，与十二指肠分界不清，胰管扩张")
    assert q.relation == "closely related" and q.related_organ == "duodenum"
    assert q.specific_features == ["duct dilatation"]
    q = one("右肾可见类圆形低密度影，与肾实质分界不清")
    assert q.surface == "ill-defined" and q.relation is None  # its own parenchyma: the margin


def test_negation_and_several_lesions() -> None:
    out = parse_text("肝S7段见一低密度灶，边界模糊，未见钙化；右肾见一囊肿。")
    assert [q.organ for q in out.queries] == ["liver", "kidney"]
    assert out.queries[0].specific_features == []
    assert parse_text("肝内未见明显占位。").queries == []


@pytest.mark.parametrize("text", ["右肺上叶结节，不除外肺癌", "右肺上叶结节，考虑肺癌"])
def test_a_differential_qualifies_the_lesion_before_it(text: str) -> None:
    """"不除外肺癌" (cannot exclude lung cancer) is about the nodule, not a second lesion, as in
    English "..., cannot exclude lung cancer"."""
    q = one(text)
    assert q.sub_location == "right upper lobe" and q.uncertain


@pytest.mark.parametrize("text, places", [
    ("肝左叶及右叶各见一低密度灶", [("liver", None, "left lobe"), ("liver", None, "right lobe")]),
    ("增强CT，肝脏左叶、右叶各见一低密度灶", [("liver", None, "left lobe"), ("liver", None, "right lobe")]),
    ("左肾及右肾各见一囊肿", [("kidney", "left", None), ("kidney", "right", None)]),
    ("肝内可见多个（左右各1）片状低亮度灶", [("liver", "bilateral", None)]),  # one description, both lobes
])
def test_each_of_listed_places_holds_a_lesion(text: str, places: list[tuple]) -> None:
    """"A及B各见一…" (one in each of A and B) is one lesion per place, as English "a lesion in each"."""
    out = parse_text(text)
    assert [(q.organ, q.side, q.sub_location) for q in out.queries] == places
    assert all(q.enhancement == "contrast-enhanced" for q in out.queries) or "增强" not in text


def test_unknown_characters_are_flagged() -> None:
    out = parse_text("右肾可见低密度影，呵呵哈")
    assert out.queries[0].unknown_words == ["呵呵哈"] and out.unknown_words == ["呵呵哈"]
    assert is_chinese("右肾低密度影") and not is_chinese("right kidney cyst")
    assert [t.kind for t in tokenize("左肾囊肿")] == ["place", "lesion"]  # longest match: 左肾, not 左 + 肾


def test_preview_speaks_chinese_and_marks_inferred() -> None:
    from TextLesionSegLib.mrml.preview import preview_html

    html = preview_html("右肾可见类圆形低密度影")
    assert "器官: 肾" in html and "侧别: 右" in html and "形态: 类圆形" in html and "密度: 低密度" in html
    assert "(推断)" in html and "个病灶" in html
    assert "(inferred)" in preview_html("cyst in the left kidney")
    assert "侧别: 左右叶 (推断)" in preview_html("肝内可见多发类圆形低密度灶")  # both lobes, inferred
    assert "side: both lobes (inferred)" in preview_html("multiple hypodense lesions in the liver")
    assert "side: both lobes" in preview_html("hypodense lesions in both lobes of the liver")


def test_parse_command_flags_unplaced_words_in_both_languages() -> None:
    proc = subprocess.run([sys.executable, "-m", "TextLesionSegLib.cli", "parse", "--indent", "0",
                           "cyst in the left kidney, zorgly", "右肾可见低密度影，呵呵哈"],
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr
    inputs = json.loads(proc.stdout)["inputs"]
    assert inputs[0]["unknown_words"] == ["zorgly"] and inputs[1]["unknown_words"] == ["呵呵哈"]
    assert inputs[1]["queries"][0]["language"] == "zh"


def test_segment_names_keep_the_users_chinese_words() -> None:
    from TextLesionSegLib.pipeline.names import clean_name

    out = parse_text("肝S7段见一低密度灶；右肾见一囊肿。")
    assert [clean_name(q.text) for q in out.queries] == ["肝S7段见一低密度灶", "右肾见一囊肿"]
