"""Probe (not a test): realistic phrasings of issue 19's classes, each with the fields expected.

Written for session 8 from how radiologists type (abbreviations, Couinaud segments, measurements,
negation and uncertainty, several lesions in one sentence, Chinese), not taken from the coded
files. Prints each phrasing the parser reads differently and a count; the classes' rules are
tested in ``test_query_generalization.py`` and ``test_query_chinese.py``. Usage:
``python Testing/Python/probe_query_phrasings.py`` (another parser: its ``TextLesionSeg`` folder
first on ``PYTHONPATH``, as for ``bench_query_parse.py``).
"""

from __future__ import annotations

from TextLesionSegLib.query import parse_text

#: (text, {field: expected}); "_n" is the number of lesions described
CASES: list[tuple[str, dict[str, object]]] = [
 # abbreviations
 ("6 mm ground-glass nodule RUL", {"sub_location": "right upper lobe"}),
 ("RLL 1.2cm spiculated nodule", {"sub_location": "right lower lobe", "size_mm": [12.0]}),
 ("Part-solid nodule in the lingular segment, 9 mm", {"sub_location": "left upper lobe", "size_mm": [9.0]}),
 ("LLL mass 3.4 x 2.9 cm abutting the pleura", {"sub_location": "left lower lobe", "size_mm": [34.0, 29.0]}),
 ("Nodule, R upper lobe, 7mm", {"sub_location": "right upper lobe"}),
 ("new 4mm nodule in RML", {"sub_location": "right middle lobe", "size_mm": [4.0]}),
 ("LUL apicoposterior segment nodule 8 mm", {"sub_location": "left upper lobe"}),
 ("Rt lower lobe consolidation with mass", {"sub_location": "right lower lobe"}),
 ("2 cm mass L kidney upper pole", {"organ": "kidney", "side": "left"}),
 ("Lt adrenal nodule 1.5 cm", {"organ": "adrenal", "side": "left"}),
 # Couinaud
 ("arterially enhancing lesion seg 7, 2.1 cm", {"sub_location": "segment VII"}),
 ("S8 hypodense lesion 12 mm", {"sub_location": "segment VIII"}),
 ("1.5cm lesion in segment VII/VIII", {"sub_location": "segment VII"}),
 ("Lesion in hepatic segment 6", {"sub_location": "segment VI"}),
 ("hypodense lesion liver seg. IVb", {"sub_location": "segment IV"}),
 ("HCC segment 5/6 measuring 3 cm", {"sub_location": "segment V"}),
 ("liver S2 cyst", {"sub_location": "segment II"}),
 ("segment eight lesion of the liver", {"sub_location": "segment VIII"}),
 # measurements
 ("renal cyst 2.3x1.8cm left kidney", {"size_mm": [23.0, 18.0], "side": "left"}),
 ("left renal mass 45 x 38 mm", {"size_mm": [45.0, 38.0]}),
 ("pancreatic head mass 2.5 × 2.0 × 1.8 cm", {"size_mm": [25.0, 20.0, 18.0], "sub_location": "head"}),
 ("liver lesion 3*2cm in the right lobe", {"size_mm": [30.0, 20.0]}),
 ("1.2cmx0.9cm nodule in the RUL", {"size_mm": [12.0, 9.0]}),
 ("RUL nodule measuring 8mm x 6mm", {"size_mm": [8.0, 6.0]}),
 ("mass in the left kidney, 4.1 cm in greatest dimension", {"size_mm": [41.0]}),
 # negation / uncertainty
 ("No suspicious pulmonary nodule.", {"_n": 0}),
 ("Hypodense lesion in the right hepatic lobe, no calcification or fat", {"specific_features": []}),
 ("Renal cyst in the left kidney without enhancement, probably benign", {"uncertain": True, "side": "left"}),
 ("Possible small nodule in the RLL", {"uncertain": True, "sub_location": "right lower lobe"}),
 ("Indeterminate 1 cm lesion in the pancreatic tail, cannot rule out neoplasm", {"uncertain": True, "sub_location": "tail"}),
 ("No evidence of liver metastases. 2 cm cyst in the right kidney.", {"organ": "kidney", "side": "right"}),
 ("Mass in the pancreatic body, no ductal dilatation", {"specific_features": []}),
 ("likely hemangioma in segment 6", {"uncertain": True, "sub_location": "segment VI"}),
 ("There is no lymphadenopathy. Spiculated mass in the LUL.", {"sub_location": "left upper lobe"}),
 # several lesions
 ("Two hypodense lesions in the liver: 2 cm in segment VII and 1 cm in segment II", {"_n": 2}),
 ("cysts in both kidneys, largest 3 cm on the right", {"side": "bilateral"}),
 ("8 mm nodule in the RUL; 5 mm nodule in the LLL", {"_n": 2}),
 ("Masses in the RUL and LLL", {"_n": 2}),
 ("A 2 cm cyst in the left kidney and a 3 cm mass in the right kidney", {"_n": 2}),
 ("hypodense lesions in segments 2 and 7", {"_n": 2}),
 # Chinese
 ("右肺下叶见一结节，大小约1.2cm×0.8cm，边缘毛刺", {"sub_location": "right lower lobe", "size_mm": [12.0, 8.0]}),
 ("肝S8段见类圆形低密度影，直径约1.5cm", {"sub_location": "segment VIII", "size_mm": [15.0]}),
 ("左肾见囊性低密度灶，边界清", {"side": "left", "surface": "well-defined"}),
 ("胰腺体尾部不规则低密度肿块，胰管扩张", {"sub_location": "body", "specific_features": ["duct dilatation"]}),
 ("双肾多发囊肿，较大者位于左肾", {"side": "bilateral"}),
 ("两肾多发囊肿", {"side": "bilateral"}),
 ("右肺上叶磨玻璃结节，约8mm，考虑早期肺癌可能", {"uncertain": True, "size_mm": [8.0]}),
 ("肝右后叶见一低密度灶，未见强化", {"sub_location": "right lobe"}),
 ("肝脏第VII段见稍低密度结节", {"sub_location": "segment VII"}),
 ("左肺下叶见一实性结节，无钙化", {"sub_location": "left lower lobe", "specific_features": []}),
 ("肝内未见异常密度影。右肾见一囊肿", {"organ": "kidney", "side": "right"}),
 ("乙状结肠肠壁增厚，浆膜面毛糙", {"sub_location": "sigmoid colon", "surface": "ill-defined"}),
 ("右肾上极见一类圆形低密度灶", {"side": "right", "shape": "round-like"}),
 ("肝左外叶见一低密度灶，大小约2.0×1.5cm", {"sub_location": "left lobe", "size_mm": [20.0, 15.0]}),
 ("RUL: 7 mm solid nodule, unchanged", {"sub_location": "right upper lobe", "size_mm": [7.0]}),
 ("Segment 7: 2.2 cm arterially enhancing lesion with washout", {"sub_location": "segment VII"}),
 ("hypoattenuating lesion in the right lobe of the liver (segment 6), 1.8 x 1.5 cm", {"sub_location": "segment VI", "size_mm": [18.0, 15.0]}),
 ("1.1 x 0.9 x 0.8 cm nodule, LLL", {"sub_location": "left lower lobe", "size_mm": [11.0, 9.0, 8.0]}),
 ("approx. 3cm mass in the tail of the pancreas", {"sub_location": "tail", "size_mm": [30.0]}),
 ("Lesion in the uncinate process, ill-defined, 2.0 cm", {"sub_location": "uncinate process", "surface": "ill-defined"}),
 ("Left renal lower pole exophytic mass, 5.2 cm", {"side": "left", "size_mm": [52.0]}),
 ("No focal liver lesion. Bilateral simple renal cysts, largest 2.1 cm on the left", {"side": "bilateral"}),
 ("Findings suspicious for metastasis in segment VIII", {"uncertain": True, "sub_location": "segment VIII"}),
 ("Nodule in the RML, cannot exclude malignancy", {"uncertain": True}),
 ("Questionable nodule RLL", {"uncertain": True, "sub_location": "right lower lobe"}),
 ("RLL nodule? 5 mm", {"uncertain": True}),
 ("No new nodules. Previously seen RUL nodule now 9 mm", {"sub_location": "right upper lobe", "size_mm": [9.0]}),
 ("Negative for pancreatic mass. Hypodense lesion in the spleen", {"organ": "spleen"}),
 ("Liver: 2 hypodense lesions, segment 4 (1.2 cm) and segment 8 (0.9 cm)", {"_n": 2}),
 ("Three nodules: RUL 6 mm, RML 4 mm, LLL 5 mm", {"_n": 3}),
 ("nodules in the RUL and RLL measuring 5 and 7 mm", {"_n": 2}),
 ("右肾下极见一外生性肿块，大小约5.2×4.8cm，密度不均", {"side": "right", "size_mm": [52.0, 48.0], "density_variation": "heterogeneous"}),
 ("肝S4、S8段见多发低密度灶", {"sub_location": "segment IV"}),
 ("右肺中叶结节，边缘光整，约6mm", {"sub_location": "right middle lobe", "surface": "well-defined"}),
 ("胰头区见低密度灶，边界不清，胰管及胆总管扩张", {"sub_location": "head", "surface": "ill-defined"}),
 ("左肺上叶舌段见磨玻璃结节", {"sub_location": "left upper lobe"}),
 ("肝右叶见一大小约3cm*2cm的稍低密度影", {"sub_location": "right lobe", "size_mm": [30.0, 20.0]}),
 ("升结肠壁不规则增厚，浆膜面模糊", {"sub_location": "ascending colon", "surface": "ill-defined"}),
 ("左肾上腺见一结节，约1.5cm，考虑腺瘤", {"organ": "adrenal", "side": "left", "uncertain": True}),
 ("双肺多发结节，较大者位于右肺下叶，约1.2cm", {"side": "bilateral"}),
 ("肝内见多发囊性低密度灶，未见强化", {"density": "hypodense"}),
 ("肝脏S6段见一类圆形稍低密度影，边界欠清", {"sub_location": "segment VI", "surface": "ill-defined"}),
 ("No definite liver lesion; small cyst in the right kidney", {"organ": "kidney", "side": "right"}),
 ("Hypodense lesion in the left kidney, not enhancing, likely a cyst", {"uncertain": True, "side": "left"}),
 ("No mass. No lymphadenopathy.", {"_n": 0}),
 ("Liver lesion in segment VI, hemangioma versus metastasis", {"sub_location": "segment VI"}),
 ("RLL nodule without calcification or cavitation, 9 mm", {"specific_features": [], "size_mm": [9.0]}),
 ("Mass in the pancreatic head with upstream duct dilatation; no vascular invasion", {"specific_features": ["duct dilatation"]}),
 ("probable metastasis in segment 8, 1.3 cm", {"uncertain": True, "sub_location": "segment VIII"}),
 ("Ill-defined hypodense lesion in the pancreatic tail, suspicious for adenocarcinoma", {"uncertain": True, "surface": "ill-defined"}),
 ("A 2.0 x 1.5 cm lesion in S6 and a 1.0 cm lesion in S3", {"_n": 2}),
 ("Small nodules in both lower lobes", {"side": "bilateral"}),
 ("Right upper lobe spiculated mass 3.2 cm with a satellite nodule", {"sub_location": "right upper lobe", "size_mm": [32.0]}),
 ("Sigmoid colon wall thickening, 5 cm segment, pericolic fat stranding", {"sub_location": "sigmoid colon"}),
 ("肝S5、S6段交界处见一低密度灶", {"sub_location": "segment V"}),
 ("右肾囊肿可能，约2.1cm", {"uncertain": True, "side": "right", "size_mm": [21.0]}),
 ("未见明显肿大淋巴结。左肾见一类圆形低密度灶", {"side": "left", "shape": "round-like"}),
 ("肝左叶及右叶各见一低密度灶", {"_n": 2}),
 ("右肺上叶结节，约0.8cm×0.6cm，边界清，无钙化", {"size_mm": [8.0, 6.0], "specific_features": []}),
 ("左肺下叶背段见一磨玻璃结节", {"sub_location": "left lower lobe"}),
 ("胰尾见囊性低密度灶，边界清楚，未见强化，考虑囊肿", {"sub_location": "tail", "uncertain": True}),
 ("双肾多发囊肿，大者约3.0cm", {"side": "bilateral"}),
 ("肝右叶占位，考虑肝癌", {"sub_location": "right lobe", "uncertain": True}),
 ("肝右叶S7段见低密度灶", {"sub_location": "segment VII"}),
]


def main() -> int:
    """Print every miss and the count; exit 0 (a probe, not a gate)."""
    misses = 0
    for text, want in CASES:
        out = parse_text(text)
        first = out.queries[0] if out.queries else None
        got = {k: len(out.queries) if k == "_n" else getattr(first, k, "no lesion") for k in want}
        if got != want:
            misses += 1
            print(f"MISS {text!r}: want {want}, got {got} ({out.message})")
    print(f"{misses} of {len(CASES)} phrasings read differently")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
