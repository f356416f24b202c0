"""What a query understood, as (field, label, value, how) rows in the user's language (English or
Chinese), for the Slicer panel's live preview. ``how`` is ``stated`` (a phrase of the text),
``implied`` (the text implies it: "areas of necrosis" → heterogeneous), ``similar`` (read by the
text encoder, with its similarity) or ``inferred`` (the knowledge table's typical value for the
lesion type, or the reporting convention: *not* said by the radiologist).
"""

from __future__ import annotations

from .types import LesionQuery

#: query fields shown, in reading order
FIELDS = ("organ", "side", "sub_location", "lesion_type", "shape", "density", "density_variation", "surface",
          "enhancement", "relation")
LABELS = {
    "en": {"organ": "organ", "side": "side", "sub_location": "where", "lesion_type": "type", "shape": "shape",
           "density": "density", "density_variation": "variation", "surface": "surface", "enhancement": "enhancement",
           "relation": "relation", "inferred": "inferred", "implied": "implied", "similar": "similar",
           "lesions": "{n} lesion(s)"},
    "zh": {"organ": "器官", "side": "侧别", "sub_location": "部位", "lesion_type": "类型", "shape": "形态",
           "density": "密度", "density_variation": "均匀度", "surface": "边缘", "enhancement": "扫描",
           "relation": "与周围关系", "inferred": "推断", "implied": "隐含", "similar": "相似",
           "lesions": "{n} 个病灶"},
}
_ZH = {
    "liver": "肝", "kidney": "肾", "pancreas": "胰腺", "lung": "肺", "colon": "结肠", "spleen": "脾", "adrenal": "肾上腺",
    "gallbladder": "胆囊", "bladder": "膀胱", "stomach": "胃", "bone": "骨", "lymph node": "淋巴结", "brain": "脑",
    "duodenum": "十二指肠", "esophagus": "食管", "small intestine": "小肠", "prostate": "前列腺", "uterus": "子宫",
    "ovary": "卵巢", "thyroid": "甲状腺", "breast": "乳腺",
    "left": "左", "right": "右", "bilateral": "双侧",
    "right lobe": "右叶", "left lobe": "左叶", "both lobes": "左右叶", "caudate lobe": "尾状叶", "head": "胰头", "neck": "胰颈", "body": "胰体",
    "tail": "胰尾", "uncinate process": "钩突", "upper pole": "上极", "lower pole": "下极", "interpolar region": "中部",
    "right upper lobe": "右肺上叶", "right middle lobe": "右肺中叶", "right lower lobe": "右肺下叶",
    "left upper lobe": "左肺上叶", "left lower lobe": "左肺下叶", "cecum": "盲肠", "ascending colon": "升结肠",
    "hepatic flexure": "结肠肝曲", "transverse colon": "横结肠", "splenic flexure": "结肠脾曲", "descending colon": "降结肠",
    "sigmoid colon": "乙状结肠", "rectosigmoid": "直乙交界", "rectum": "直肠",
    "round-like": "类圆形", "irregular": "不规则", "hypodense": "低密度", "isodense": "等密度", "hyperdense": "高密度",
    "mixed": "混杂密度", "homogeneous": "均匀", "heterogeneous": "不均匀", "well-defined": "边界清楚",
    "ill-defined": "边界不清", "non-contrast": "平扫", "contrast-enhanced": "增强", "not closely related": "关系不密切",
    "closely related": "关系密切",
    "lesion": "病灶", "mass": "肿块", "nodule": "结节", "cyst": "囊肿", "tumor": "肿瘤", "carcinoma": "癌",
    "metastasis": "转移瘤", "hepatocellular carcinoma": "肝细胞癌", "renal cell carcinoma": "肾细胞癌",
    "renal cyst": "肾囊肿", "liver cyst": "肝囊肿", "pancreatic adenocarcinoma": "胰腺癌", "lung cancer": "肺癌",
    "lung nodule": "肺结节", "colorectal cancer": "结直肠癌", "hemangioma": "血管瘤", "adenoma": "腺瘤",
    "pancreatic cystic neoplasm": "胰腺囊性肿瘤", "liver metastasis": "肝转移瘤", "adrenal adenoma": "肾上腺腺瘤",
}


def translate(value: str, language: str) -> str:
    """A canonical value in the user's language ("segment VII" → "S7段"); unknown ones unchanged."""
    if language != "zh":
        return value
    if value.startswith("segment "):
        roman = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8}
        return f"S{roman.get(value.split()[1], value.split()[1])}段"
    return _ZH.get(value, value)


def rows(query: LesionQuery, language: str | None = None) -> list[tuple[str, str, str, str]]:
    """(field, label, value, how) for every field the query states or infers, in ``language``
    (default: the query's own language)."""
    lang = language or query.language or "en"
    labels = LABELS.get(lang, LABELS["en"])
    out: list[tuple[str, str, str, str]] = []
    for name in FIELDS:
        value = getattr(query, name, None)
        how = "stated"
        if value is None and name in query.inferred:
            value, how = query.inferred[name], "inferred"
        elif value is None and name == "lesion_type" and query.inferred.get("lesion_type"):
            value, how = query.inferred["lesion_type"], "inferred"
        if value is None:
            continue
        if name in query.confidence:
            how = "similar"
        elif name in query.evidence and query.evidence[name].startswith("implied"):
            how = "implied"
        if name == "side" and value == "bilateral" and (query.organ or query.inferred.get("organ")) == "liver":
            value = "both lobes"  # the liver's two sides are its lobes
        out.append((name, labels[name], translate(str(value), lang), how))
    return out


def label(word: str, language: str) -> str:
    """A preview word ("inferred", "similar", "lesions") in the language."""
    return LABELS.get(language, LABELS["en"]).get(word, word)
