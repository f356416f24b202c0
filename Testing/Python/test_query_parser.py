"""Parser: splitting, synonyms, negation, sizes, counts, locations (issue 4 items 1 and 6)."""

from __future__ import annotations

import pytest

from TextLesionSegLib.query import LesionQuery, parse_text


def one(text: str) -> LesionQuery:
    out = parse_text(text)
    assert len(out.queries) == 1, (text, out.message, [q.text for q in out.queries])
    return out.queries[0]


# --- splitting ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, n",
    [
        ("2 cm round cyst in the left kidney; small hyperdense nodule in liver segment VII", 2),
        ("2 cm round cyst in the left kidney. Small hyperdense nodule in liver segment VII.", 2),
        ("cyst in the left kidney\nnodule in the right upper lobe\n\nmass in the sigmoid colon", 3),
        ("1. hypodense lesion in the liver 2. cyst in the pancreatic tail", 2),
        ("1) hypodense lesion in segment IV 2) round nodule in the RLL 3) adrenal adenoma on the left", 3),
        ("- liver cyst\n- renal cyst\n* adrenal nodule", 3),
        ("hypodense lesion in the right kidney and another lesion in the left kidney", 2),
        ("Cyst in segment VI. A second cyst is seen in segment VIII.", 2),
        # one lesion over several sentences: definite references continue it
        (
            "Contrast-enhanced CT shows an irregular hypodense lesion in the pancreatic head. "
            "The pancreatic duct is dilated. The lesion is closely related to the duodenum with indistinct borders.",
            1,
        ),
        ("Hypodense lesion in the right hepatic lobe; vessels traversing the lesion margin are noted.", 1),
        ("Irregular mass in the left kidney. It shows heterogeneous enhancement. Hypodense areas are present.", 1),
    ],
)
def test_splitting(text: str, n: int) -> None:
    out = parse_text(text)
    assert len(out.queries) == n, [q.text for q in out.queries]


def test_another_one_is_a_lesion_of_the_same_kind() -> None:
    a, b = parse_text("A lesion in the liver. Another one in the spleen.").queries
    assert (a.organ, b.organ) == ("liver", "spleen")
    a, b = parse_text("cyst in the left kidney and another in the liver").queries
    assert (a.lesion_type, b.lesion_type, b.organ) == ("renal cyst", "liver cyst", "liver")


def test_split_keeps_order_and_text() -> None:
    out = parse_text("round cyst in the left kidney; spiculated nodule in the left upper lobe")
    assert [q.organ for q in out.queries] == ["kidney", "lung"]
    assert out.queries[1].text == "spiculated nodule in the left upper lobe"


def test_one_noun_in_two_places_of_distinct_lesions_gives_one_description_each() -> None:
    """Issue 19: "lesion in RLL and LUL" lost the LUL. A singular lesion in both lungs, or a
    plural one in several places, is one lesion per place; the rest of the sentence goes with each."""
    assert [(q.sub_location, q.side) for q in parse_text("lesion in RLL and LUL").queries] == [
        ("right lower lobe", "right"), ("left upper lobe", "left")]
    qs = parse_text("spiculated nodules in the RUL, RLL and LUL, up to 8 mm").queries
    assert [q.sub_location for q in qs] == ["right upper lobe", "right lower lobe", "left upper lobe"]
    assert all(q.surface == "ill-defined" and q.size_mm == [8.0] for q in qs), [(q.surface, q.size_mm) for q in qs]
    assert [q.sub_location for q in parse_text("hypodense lesions in seg 7 and seg 4 of the liver").queries] == [
        "segment VII", "segment IV"]


@pytest.mark.parametrize("text", ["a mass in the RUL and RML", "a mass in the pancreatic head and body",
                                  "a 2 cm mass in the right upper and middle lobes"])
def test_one_lesion_spanning_two_places_stays_one(text: str) -> None:
    assert len(parse_text(text).queries) == 1


# --- the examples ------------------------------------------------------------------

def test_pancreatic_head_example() -> None:
    q = one("irregular hypodense mass in the pancreatic head with ill-defined margins, upstream duct dilated")
    assert (q.organ, q.sub_location) == ("pancreas", "head")
    assert (q.shape, q.density, q.surface) == ("irregular", "hypodense", "ill-defined")
    assert q.specific_features == ["duct dilatation"]
    assert q.lesion_type == "mass"
    assert q.inferred["lesion_type"] == "pancreatic adenocarcinoma"


def test_two_lesion_example() -> None:
    a, b = parse_text("2 cm round cyst in the left kidney; small hyperdense nodule in liver segment VII").queries
    assert (a.organ, a.side, a.shape, a.size_mm, a.lesion_type) == ("kidney", "left", "round-like", [20.0], "renal cyst")
    assert a.density is None and a.inferred["density"] == "hypodense"  # inferred, kept apart
    assert (b.organ, b.sub_location, b.density, b.size_word, b.lesion_type) == (
        "liver", "segment VII", "hyperdense", "small", "nodule")


# --- synonyms ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "phrase, attribute, value",
    [
        ("low attenuation lesion in the liver", "density", "hypodense"),
        ("hypoattenuating lesion in the liver", "density", "hypodense"),
        ("hypoenhancing mass in the pancreatic body", "density", "hypodense"),
        ("mass with attenuation similar to the adjacent bowel wall in the sigmoid colon", "density", "isodense"),
        ("lesion in the liver, slightly higher than the parenchyma", "density", "hyperdense"),
        ("nodule of soft-tissue density in the right lower lobe", "density", "isodense"),
        ("irregular soft tissue mass in the ascending colon", "density", "isodense"),
        ("solid nodule in the left upper lobe", "density", "isodense"),
        ("hypervascular lesion in segment VI", "density", "hyperdense"),
        ("arterially enhancing lesion in segment VIII", "density", "hyperdense"),
        ("lytic lesion in the right iliac bone", "density", "hypodense"),
        ("sclerotic lesion in a vertebral body", "density", "hyperdense"),
        ("ground glass nodule in the left upper lobe", "density", "hypodense"),
        ("part-solid nodule in the RUL", "density", "mixed"),
        ("nodule of mixed density in the right upper lobe", "density", "mixed"),
        ("mixed hyperdense lesion in the right kidney", "density", "hyperdense"),
        ("isoattenuating mass in the uncinate process", "density", "isodense"),
        ("well-circumscribed lesion in the spleen", "surface", "well-defined"),
        ("lesion with sharp margins in the liver", "surface", "well-defined"),
        ("poorly defined lesion in the liver", "surface", "ill-defined"),
        ("infiltrative mass in the pancreatic tail", "surface", "ill-defined"),
        ("lesion with indistinct margins in the left kidney", "surface", "ill-defined"),
        ("spiculated nodule in the left upper lobe", "surface", "ill-defined"),
        ("nodule that is not well defined in the liver", "surface", "ill-defined"),
        ("lobulated mass in the right kidney", "shape", "irregular"),
        ("oval lesion in the spleen", "shape", "round-like"),
        ("ovoid nodule in the right adrenal gland", "shape", "round-like"),
        ("spherical lesion in the liver", "shape", "round-like"),
        ("inhomogeneous lesion in the liver", "density_variation", "heterogeneous"),
        ("homogeneously hypodense cyst", "density_variation", "homogeneous"),
        ("uneven attenuation of a liver lesion", "density_variation", "heterogeneous"),
        ("unenhanced CT: nodule in the left adrenal", "enhancement", "non-contrast"),
        ("portal venous phase: lesion in segment V", "enhancement", "contrast-enhanced"),
        ("non-contrast CT: round lesion in the right kidney", "enhancement", "non-contrast"),
        ("lesion in the pancreatic head invading the duodenum", "relation", "closely related"),
        ("renal lesion with no close relationship with adjacent organs", "relation", "not closely related"),
    ],
)
def test_synonyms(phrase: str, attribute: str, value: str) -> None:
    assert getattr(one(phrase), attribute) == value


def test_component_density_is_not_the_main_density() -> None:
    q = one("irregular hypodense lesion in the right kidney with internal hyperdense foci and areas of high attenuation")
    assert q.density == "hypodense"
    q = one("In the left hepatic lobe there is a patchy area of slightly decreased attenuation with hyperdense foci.")
    assert q.density == "hypodense"


def test_relation_span_is_not_the_margin_or_the_organ() -> None:
    q = one("round hypodense lesion in the left kidney with well-defined margins, closely related to the liver "
            "with poorly defined borders")
    assert (q.organ, q.surface, q.relation, q.related_organ) == ("kidney", "well-defined", "closely related", "liver")


# --- negation ----------------------------------------------------------------------------

def test_negated_feature_asserts_nothing() -> None:
    q = one("hypodense mass in the pancreatic head, no duct dilatation, without calcification")
    assert q.specific_features == []
    q = one("hypodense mass in the pancreatic head with calcification but no duct dilatation")
    assert q.specific_features == ["calcification"]


def test_negated_attribute_words_are_ignored() -> None:
    q = one("lesion in the liver, not hyperdense, without necrosis")
    assert q.density is None and q.specific_features == []


@pytest.mark.parametrize("text", ["no lesion", "No focal liver lesion.", "No evidence of metastasis",
                                  "no mass, no nodule, no lymphadenopathy"])
def test_only_negations_give_no_query(text: str) -> None:
    out = parse_text(text)
    assert out.queries == []
    assert "negat" in out.message


# --- sizes, counts, uncertainty, locations ----------------------------------------------------

@pytest.mark.parametrize(
    "text, size",
    [
        ("2 cm cyst in the liver", [20.0]),
        ("cyst measuring 15 mm in the liver", [15.0]),
        ("2 x 3 cm mass in the right kidney", [20.0, 30.0]),
        ("2.5 × 1,5 cm nodule in the RUL", [25.0, 15.0]),
        ("mass of 12 x 8 x 10 mm in the pancreatic tail", [12.0, 8.0, 10.0]),
        ("4cm mass in the sigmoid colon", [40.0]),
    ],
)
def test_sizes(text: str, size: list[float]) -> None:
    assert one(text).size_mm == size


@pytest.mark.parametrize(
    "text, count",
    [("two hypodense lesions in the liver", 2), ("multiple cysts in both kidneys", "multiple"),
     ("3 nodules in the right lower lobe", 3), ("several metastases in the liver", "multiple"),
     ("a 2 cm cyst in the liver", None)],
)
def test_counts(text: str, count: object) -> None:
    assert one(text).count == count


@pytest.mark.parametrize("text", ["possible metastasis in segment VI", "lesion in the liver, cannot exclude HCC",
                                  "probable renal cyst", "nodule suspicious for malignancy in the RUL"])
def test_uncertainty(text: str) -> None:
    assert one(text).uncertain is True


@pytest.mark.parametrize(
    "text, organ, side, sub",
    [
        ("cyst in the left kidney", "kidney", "left", None),
        ("right renal mass", "kidney", "right", None),
        ("lesion in hepatic segment VIII", "liver", None, "segment VIII"),
        ("lesion in segment 4 of the liver", "liver", None, "segment IV"),
        ("lesion in segment 4a", "liver", None, "segment IV"),
        ("lesion in S7", "liver", None, "segment VII"),
        ("lesion in the caudate lobe", "liver", None, "caudate lobe"),
        ("lesion in the right lobe of the liver", "liver", None, "right lobe"),
        ("mass in the uncinate process", "pancreas", None, "uncinate process"),
        ("mass in the tail of the pancreas", "pancreas", None, "tail"),
        ("pancreatic cyst in the body", "pancreas", None, None),
        ("mass in the ascending colon", "colon", None, "ascending colon"),
        ("rectal mass", "colon", None, "rectum"),
        ("mass at the splenic flexure", "colon", None, "splenic flexure"),
        ("nodule in the right middle lobe", "lung", "right", "right middle lobe"),
        ("nodule in the lower lobe of the left lung", "lung", "left", "left lower lobe"),
        ("LLL nodule", "lung", "left", "left lower lobe"),
        ("left adrenal nodule", "adrenal", "left", None),
        ("enlarged mediastinal lymph node", "lymph node", None, None),
        ("lytic lesion in a vertebral body", "bone", None, None),
        ("hypodense lesion in the spleen", "spleen", None, None),
        ("gallbladder wall mass", "gallbladder", None, None),
        ("bladder mass", "bladder", None, None),
        ("gastric mass", "stomach", None, None),
        ("irregular mass in the gastric antrum", "stomach", None, None),
        ("a metastasis in segments V and VIII", "liver", None, "segment V"),  # one lesion spanning both
        ("ring-enhancing lesion in the brain", "brain", None, None),
    ],
)
def test_locations(text: str, organ: str, side: str | None, sub: str | None) -> None:
    q = one(text)
    assert (q.organ, q.side, q.sub_location) == (organ, side, sub)


@pytest.mark.parametrize(
    "text, lesion_type",
    [
        ("HCC in segment VII", "hepatocellular carcinoma"),
        ("renal carcinoma on the right", "renal cell carcinoma"),
        ("cyst in the pancreatic tail", "pancreatic cyst"),
        ("IPMN in the pancreatic head", "pancreatic cyst"),
        ("hemangioma in segment VI", "hemangioma"),
        ("liver metastases", "liver metastasis"),
        ("sigmoid colon cancer", "colorectal cancer"),
        ("adenoma of the left adrenal", "adrenal adenoma"),
        ("pulmonary nodule in the RUL", "lung nodule"),
        ("mass in the right kidney", "mass"),
    ],
)
def test_lesion_types(text: str, lesion_type: str) -> None:
    assert one(text).lesion_type == lesion_type


def test_unknown_words_are_reported() -> None:
    q = one("hypodense lesion in the liver with a peculiar zebra pattern")
    assert "zebra" in q.unknown_words and "peculiar" in q.unknown_words
    assert "hypodense" not in q.unknown_words and "liver" not in q.unknown_words


@pytest.mark.parametrize(
    "text, features",
    [
        ("Hypodense mass in the pancreatic head. Calcification is not seen. The duct is not dilated.", []),
        ("Irregular mass in the left kidney; necrosis was excluded.", []),
        ("Irregular mass in the left kidney with calcification; necrosis was excluded.", ["calcification"]),
    ],
)
def test_negation_after_the_term(text: str, features: list[str]) -> None:
    q = one(text)
    assert q.specific_features == features


def test_negated_organ_is_not_the_lesion_organ() -> None:
    assert one("No liver lesion, but a cyst in the left kidney.").organ == "kidney"
    assert parse_text("Liver lesion is not seen.").queries == []


@pytest.mark.parametrize(
    "text, organ, relation, related",
    [
        ("The mass in the pancreatic head abuts the portal vein", "pancreas", "closely related", "portal vein"),
        ("hypodense lesion in the left kidney, separate from the adjacent bowel", "kidney", "not closely related", None),
        ("mass in the pancreatic body without invasion of the splenic vein", "pancreas", "not closely related", None),
        ("lesion separated from the spleen", None, "not closely related", None),
        ("renal mass invading the psoas muscle", "kidney", "closely related", "psoas muscle"),
    ],
)
def test_relation_phrasings_and_masked_neighbours(text: str, organ, relation: str, related) -> None:
    q = one(text)
    assert (q.organ, q.relation, q.related_organ) == (organ, relation, related)


def test_heading_lines_give_context_to_their_items() -> None:
    text = "Contrast-enhanced CT.\nKidneys:\n- 2 cm cyst on the left\n- 1 cm hyperdense nodule on the right\nLiver:\n- lesion in segment VI"
    queries = parse_text(text).queries
    assert [(q.organ, q.side, q.sub_location) for q in queries] == [
        ("kidney", "left", None), ("kidney", "right", None), ("liver", None, "segment VI")]
    assert {q.enhancement for q in queries} == {"contrast-enhanced"}  # the scan phase, said once
