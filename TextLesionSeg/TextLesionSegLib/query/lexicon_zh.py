"""Chinese lexicon: terms of Chinese CT reports → the parser's canonical values.

``GENERAL`` is written from standard Chinese radiology report wording (影像诊断学 textbook terms
for density, margin, shape, enhancement phases; 解剖 names of organs, lobes, Couinaud segments,
pancreas and colon parts), not from any coded file; it is frozen (docs/query.md,
"Generalisation"). ``FROM_FILE`` holds terms added because a report used them; held-out folds
ablate it by the mechanical rule. Each term maps to ``(kind, value)``; :mod:`.chinese` segments
text by longest match over both.

Kinds: ``organ``; ``place`` (value ``organ/sub_location/side``, empty parts allowed); ``side``; ``shape``; ``density``;
``variation``; ``implies`` (a component implying heterogeneity); ``surface``; ``margin`` (a
margin noun awaiting its quality); ``quality`` (``good``/``bad``); ``enhancement``; ``relation``;
``invades`` (a verb of invasion taking an organ); ``plane`` (the fat plane around
the lesion, awaiting its quality: blurred → closely related, clear → not); ``neighbour`` (a structure that is no organ
of the table, e.g. a muscle); ``with`` (与/和, before a neighbour);
``feature``; ``lesion``; ``negation``; ``uncertain``; ``count``; ``size_word``; ``filler``.
"""

from __future__ import annotations

_GENERAL_TEXT = """
肝 organ liver|肝脏 organ liver|肝内 organ liver|肾 organ kidney|肾脏 organ kidney|胰 organ pancreas
胰腺 organ pancreas|肺 organ lung|结肠 organ colon|大肠 organ colon|脾 organ spleen|脾脏 organ spleen
肾上腺 organ adrenal|胆囊 organ gallbladder|膀胱 organ bladder|胃 organ stomach|十二指肠 organ duodenum
淋巴结 organ lymph node|骨 organ bone|脑 organ brain|食管 organ esophagus|小肠 organ small intestine
前列腺 organ prostate|子宫 organ uterus|卵巢 organ ovary|甲状腺 organ thyroid|乳腺 organ breast
左肾 place kidney//left|右肾 place kidney//right|双肾 place kidney//bilateral|左侧肾脏 place kidney//left
右侧肾脏 place kidney//right|左肾上腺 place adrenal//left|右肾上腺 place adrenal//right
肝右叶 place liver/right lobe/|肝左叶 place liver/left lobe/|肝尾状叶 place liver/caudate lobe/|尾状叶 place liver/caudate lobe/
右前叶 place liver/right lobe/|右后叶 place liver/right lobe/|左外叶 place liver/left lobe/|左内叶 place liver/segment IV/
肝顶 place liver/right lobe/|肝顶部 place liver/right lobe/
胰头 place pancreas/head/|胰颈 place pancreas/neck/|胰体 place pancreas/body/|胰尾 place pancreas/tail/
胰头部 place pancreas/head/|胰体部 place pancreas/body/|胰尾部 place pancreas/tail/|钩突 place pancreas/uncinate process/
胰体尾 place pancreas/body/|胰头颈 place pancreas/head/|胰腺钩突 place pancreas/uncinate process/
胰腺头部 place pancreas/head/|胰腺体部 place pancreas/body/|胰腺尾部 place pancreas/tail/
左肺上叶 place lung/left upper lobe/left|左肺下叶 place lung/left lower lobe/left|右肺上叶 place lung/right upper lobe/right
右肺中叶 place lung/right middle lobe/right|右肺下叶 place lung/right lower lobe/right|舌段 place lung/left upper lobe/left
左肺 place lung//left|右肺 place lung//right|双肺 place lung//bilateral|两肺 place lung//bilateral
盲肠 place colon/cecum/|升结肠 place colon/ascending colon/|横结肠 place colon/transverse colon/
降结肠 place colon/descending colon/|乙状结肠 place colon/sigmoid colon/|直肠 place colon/rectum/
结肠肝曲 place colon/hepatic flexure/|结肠脾曲 place colon/splenic flexure/|直乙交界 place colon/rectosigmoid/
左侧 side left|右侧 side right|左 side left|右 side right|双侧 side bilateral|两侧 side bilateral
类圆形 shape round-like|圆形 shape round-like|椭圆形 shape round-like|卵圆形 shape round-like|球形 shape round-like
类圆 shape round-like|不规则 shape irregular|不规则形 shape irregular|分叶状 shape irregular|分叶 shape irregular
楔形 shape irregular|片状 shape irregular|斑片状 shape irregular|条片状 shape irregular|不规则形态 shape irregular
低密度 density hypodense|稍低密度 density hypodense|略低密度 density hypodense|等密度 density isodense
稍高密度 density hyperdense|略高密度 density hyperdense|高密度 density hyperdense|混杂密度 density mixed
软组织密度 density isodense|水样密度 density hypodense|液性密度 density hypodense|脂肪密度 density hypodense
磨玻璃 density hypodense|磨玻璃密度 density hypodense|部分实性 density mixed|混合磨玻璃 density mixed
低衰减 density hypodense|高衰减 density hyperdense|囊性 density hypodense|囊状 density hypodense
均匀 variation homogeneous|密度均匀 variation homogeneous|不均匀 variation heterogeneous|欠均匀 variation heterogeneous
密度不均 variation heterogeneous|密度不均匀 variation heterogeneous|不均 variation heterogeneous|混杂 implies heterogeneous
囊变 implies heterogeneous|液化 implies heterogeneous
坏死区 implies heterogeneous|囊变区 implies heterogeneous
边界 margin -|边缘 margin -|界限 margin -|境界 margin -|轮廓 margin -|分界 margin -|界面 margin -|浆膜面 margin -
浆膜 margin -|外缘 margin -|包膜 margin -|周边 margin -
清楚 quality good|清晰 quality good|光整 quality good|光滑 quality good|锐利 quality good|完整 quality good|清 quality good
不清 quality bad|不清楚 quality bad|不清晰 quality bad|模糊 quality bad|欠清 quality bad|欠清晰 quality bad|毛糙 quality bad
不光整 quality bad|不光滑 quality bad|不锐利 quality bad|不规整 quality bad|消失 quality bad|不完整 quality bad
毛刺 surface ill-defined|毛刺状 surface ill-defined|浸润性 surface ill-defined|界清 surface well-defined
增强CT enhancement contrast-enhanced|CT增强 enhancement contrast-enhanced|增强扫描 enhancement contrast-enhanced|增强 enhancement contrast-enhanced
强化 enhancement contrast-enhanced|动脉期 enhancement contrast-enhanced|门脉期 enhancement contrast-enhanced
门静脉期 enhancement contrast-enhanced|静脉期 enhancement contrast-enhanced|延迟期 enhancement contrast-enhanced
皮髓质期 enhancement contrast-enhanced|实质期 enhancement contrast-enhanced|排泄期 enhancement contrast-enhanced
平扫 enhancement non-contrast|CT平扫 enhancement non-contrast|平扫CT enhancement non-contrast|非增强 enhancement non-contrast
关系密切 relation closely related|侵犯 invades -|累及 invades -|包绕 invades -|浸润 invades -
推压 invades -|压迫 invades -|紧贴 invades -|粘连 invades -|突入 invades -|与 with -|和 with -
钙化 feature calcification|钙化灶 feature calcification|坏死 feature necrosis|空洞 feature cavitation
出血 feature hemorrhage|胸膜牵拉 feature pleural traction|胸膜凹陷 feature pleural traction
血管集束 feature vessel convergence|血管集束征 feature vessel convergence|脂肪 feature fat|分隔 feature septation
胰管扩张 feature duct dilatation|胆管扩张 feature duct dilatation|主胰管扩张 feature duct dilatation
壁增厚 feature wall thickening|管壁增厚 feature wall thickening|支气管充气征 feature air bronchogram
廓清 feature washout|快进快出 feature washout|假包膜 feature capsule|萎缩 feature atrophy|癌栓 feature vascular invasion
瘤栓 feature vascular invasion|毛刺征 feature spiculation
病灶 lesion lesion|病变 lesion lesion|占位 lesion lesion|占位性病变 lesion lesion|影 lesion lesion|灶 lesion lesion
肿块 lesion mass|团块 lesion mass|结节 lesion nodule|囊肿 lesion cyst|肿瘤 lesion tumor|癌 lesion carcinoma
肝癌 lesion hepatocellular carcinoma|肝细胞癌 lesion hepatocellular carcinoma|肾癌 lesion renal cell carcinoma
肾细胞癌 lesion renal cell carcinoma|透明细胞癌 lesion renal cell carcinoma|胰腺癌 lesion pancreatic adenocarcinoma
转移 lesion metastasis|转移瘤 lesion metastasis|转移灶 lesion metastasis|血管瘤 lesion hemangioma|腺瘤 lesion adenoma
淋巴瘤 lesion lymphoma|脓肿 lesion abscess|息肉 lesion polyp|肿物 lesion mass
无 negation -|未见 negation -|未 negation -|没有 negation -|不伴 negation -|未发现 negation -|未示 negation -|排除 negation -
可能 uncertain -|考虑 uncertain -|疑 uncertain -|疑似 uncertain -|可疑 uncertain -|不除外 uncertain -
不能除外 uncertain -|待排 uncertain -|倾向 uncertain -|？ uncertain -
多发 count multiple|多个 count multiple|多枚 count multiple|数个 count multiple|散在 count multiple|单发 count 1
一个 count 1|两个 count 2|两枚 count 2|三个 count 3|小 size_word small|大 size_word large|巨大 size_word large
较大 size_word large|微小 size_word small
软组织 density isodense
脂肪间隙 plane -|脂肪层 plane -|脂肪界面 plane -|肠壁 neighbour bowel|肠壁增厚 feature wall thickening
左右叶 side bilateral|两叶 side bilateral|双叶 side bilateral
两肾 place kidney//bilateral|两侧肾脏 place kidney//bilateral|双侧肾脏 place kidney//bilateral
胰腺体尾 place pancreas/body/
可见 filler -|见 filler -|示 filler -|呈 filler -|一 filler -|个 filler -|枚 filler -|的 filler -|及 filler -|其 filler -
内 filler -|内部 filler -|周围 filler -|约 filler -|大小 filler -|为 filler -|处 filler -|区 filler -|部 filler -
位于 filler -|伴 filler -|并 filler -|且 filler -|较 filler -|稍 filler -|略 filler -|明显 filler -|密度 filler -
形态 filler -|范围 filler -|局部 filler -|中心 filler -|部分 filler -|区域 filler -|扫描 filler -|组织 filler -
实质 filler -|周围组织 filler -|邻近 filler -|相邻 filler -|所见 filler -|提示 filler -|该 filler -|此 filler -
另 filler -|另见 filler -|一类 filler -|段 filler -|叶 filler -|期 filler -|征 filler -|性 filler -|状 filler -
"""


def _parse(text: str) -> dict[str, tuple[str, str]]:
    """Lines of ``term kind value`` cells joined by ``|`` → {term: (kind, value)}; the first wins."""
    out: dict[str, tuple[str, str]] = {}
    for cell in text.replace("\n", "|").split("|"):
        words = cell.strip().split(" ", 2)
        if len(words) == 3:
            out.setdefault(words[0], (words[1], words[2]))
    return out


GENERAL: dict[str, tuple[str, str]] = _parse(_GENERAL_TEXT)
# Added after the freeze, from issue 19's own example ("左肺上叶不规则软组织肿块"), not from a coded file:
# 软组织 (soft tissue) → isodense, as "soft-tissue mass" in English.
# Added after the freeze from issue 19's read-only check ("肠壁增厚，周围脂肪间隙模糊"), not from a coded file:
# 脂肪间隙/脂肪层/脂肪界面 (the fat plane, kind ``plane``: its quality gives the relation, as English
# "loss of the fat plane"), 肠壁 (bowel wall, a neighbour), 肠壁增厚 (bowel wall thickening).
# Added after the freeze (session 8, realistic phrasings written for issue 19, not from a coded file):
# 左右叶/两叶/双叶 (both lobes: of the liver, its only use here; a paired organ has 双侧/两侧); 两肾,
# 两侧肾脏, 双侧肾脏 (both kidneys, as 双肾); 胰腺体尾 (as 胰体尾: body and tail, the body read first).
#: terms added because a coded report of ``malenia_attributes_zh.csv`` used them (held-out folds
#: ablate them by attestation); the type in whose reports each was first seen is noted
FROM_FILE: dict[str, tuple[str, str]] = _parse("""
高亮度 density hyperdense|低亮度 density hypodense|等亮度 density isodense|亮度 filler -
欠均 variation heterogeneous|暗区 implies heterogeneous|关系不密切 relation not closely related
器官 filler -|胰管增宽 feature duct dilatation|肾盂 organ kidney|右叶 place liver/right lobe/
左叶 place liver/left lobe/|肠管 neighbour bowel|腰大肌 neighbour psoas muscle
胰腺头 place pancreas/head/|胰腺颈 place pancreas/neck/|胰腺体 place pancreas/body/|胰腺尾 place pancreas/tail/
片 shape irregular|左右各 side bilateral
""")
#: where each FROM_FILE term was first seen (for the record; the fold rule uses the attestation)
FROM_FILE_SEEN = {
    "高亮度": "renal cell carcinoma", "低亮度": "renal cell carcinoma", "等亮度": "renal cell carcinoma",
    "亮度": "hepatocellular carcinoma", "欠均": "renal cell carcinoma", "暗区": "renal cell carcinoma",
    "关系不密切": "renal cyst", "器官": "renal cyst", "胰管增宽": "pancreatic cancer", "肾盂": "renal cyst",
    "右叶": "hepatocellular carcinoma", "左叶": "hepatocellular carcinoma", "肠管": "renal cell carcinoma",
    "腰大肌": "renal cell carcinoma",
    # session 8, from reading the in-sample misses (docs/query.md, "In-sample misses"): general
    # wording, but found through a report, so ablated like the rest
    "胰腺头": "pancreatic cancer", "胰腺颈": "pancreatic cancer", "胰腺体": "pancreatic cancer",
    "胰腺尾": "pancreatic cancer", "片": "hepatocellular carcinoma", "左右各": "hepatocellular carcinoma",
}

HOLDOUT_TABLES = ("GENERAL", "FROM_FILE")


def lexicon() -> dict[str, tuple[str, str]]:
    """Both parts, general first (a term in both keeps the general meaning)."""
    return {**FROM_FILE, **GENERAL}


def on_holdout_change() -> None:
    """The segmenter's merged lexicon is rebuilt after a held-out fold swaps a part."""
    from . import chinese

    chinese.clear_lexicon()
