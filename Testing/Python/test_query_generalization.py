"""Issue 19: descriptions as radiologists write them — shorthand, Couinaud segments, negation and
uncertainty, several lesions in one sentence, margin and heterogeneity wording of other organs,
priors carried as inferred, and the held-out machinery itself."""

from __future__ import annotations

import pytest

from TextLesionSegLib.query import parse_text
from TextLesionSegLib.query.agreement import location_value
from TextLesionSegLib.query.types import LesionQuery


def one(text: str) -> LesionQuery:
    out = parse_text(text)
    assert len(out.queries) == 1, (text, out.message, [q.text for q in out.queries])
    return out.queries[0]


def test_the_issue_example_keeps_the_location_and_negates_the_second_place() -> None:
    out = parse_text("2.3 x 1.8 cm hypodense lesion in seg VII of the liver, no mass in the RUL")
    assert len(out.queries) == 1
    q = out.queries[0]
    assert (q.organ, q.sub_location, q.density, q.size_mm) == ("liver", "segment VII", "hypodense", [23.0, 18.0])
    assert q.unknown_words == [] and out.unknown_words == []  # seg, VII, RUL are all placed
    assert location_value(q, "liver") == "right lobe"  # Couinaud VII is in the right lobe


@pytest.mark.parametrize("abbr, lobe, side", [
    ("RUL", "right upper lobe", "right"), ("RML", "right middle lobe", "right"), ("RLL", "right lower lobe", "right"),
    ("LUL", "left upper lobe", "left"), ("LLL", "left lower lobe", "left"), ("lingula", "left upper lobe", "left"),
])
def test_lobe_abbreviations(abbr: str, lobe: str, side: str) -> None:
    q = one(f"8 mm solid nodule in the {abbr}")
    assert (q.organ, q.sub_location, q.side) == ("lung", lobe, side)


@pytest.mark.parametrize("text, segment, lobe", [
    ("hypodense lesion in seg 7", "segment VII", "right lobe"), ("lesion in S7 of the liver", "segment VII", "right lobe"),
    ("hemangioma in segment 4a", "segment IV", "left lobe"), ("HCC in Couinaud segment VIII", "segment VIII", "right lobe"),
    ("metastasis in segments VI and VII", "segment VI", "right lobe"), ("cyst in seg. II", "segment II", "left lobe"),
    ("mass in the left lateral section of the liver", "left lobe", "left lobe"),
    ("lesion at the hepatic dome", "right lobe", "right lobe"),
])
def test_couinaud_segments_map_to_lobe(text: str, segment: str, lobe: str) -> None:
    q = one(text)
    assert q.organ == "liver" and q.sub_location == segment
    assert location_value(q, "liver") == lobe


def test_shorthand_and_bilateral() -> None:
    q = one("cannot exclude HCC in rt lobe of the liver")
    assert q.sub_location == "right lobe" and q.uncertain and "rt" not in q.unknown_words
    q = one("bilateral renal cysts")
    assert (q.organ, q.side, q.count) == ("kidney", "bilateral", "multiple")
    assert location_value(q, "kidney") == "bilateral"


def test_both_hepatic_lobes_stated() -> None:
    from TextLesionSegLib.query import attribute_phrases, terminology_for

    q = one("Multiple hypodense lesions in both lobes of the liver")
    assert (q.organ, q.side, q.sub_location) == ("liver", "bilateral", None)
    assert location_value(q, "liver") == "bilateral"
    assert terminology_for(q)["anatomicRegionModifier"][2] == "Right and left"
    assert attribute_phrases(q)[0] == "Location: both hepatic lobes"
    q = one("A 6 cm mass involving the right and left hepatic lobes")
    assert q.side == "bilateral" and q.count is None  # one mass may span both lobes
    assert one("bilobar hypodense lesions in the liver").side == "bilateral"
    assert one("hypodense lesion in the right hepatic lobe").side is None


def test_several_lesions_in_the_liver_with_no_lobe_infer_both_lobes() -> None:
    """Reporting convention (docs/query.md): lesions confined to one lobe are reported in it, so
    "multiple lesions in the liver" implies both lobes, inferred, never used as if said."""
    from TextLesionSegLib.query import terminology_for
    from TextLesionSegLib.query.agreement import AttributeAgreement, score

    for text in ("Multiple hypodense lesions in the liver", "增强CT，肝内可见多发（约7个）类圆形低亮度灶",
                 "three hypodense lesions in the liver"):
        q = one(text)
        assert q.side is None and q.inferred["side"] == "bilateral", text
        assert location_value(q, "liver") is None  # not stated
        assert "anatomicRegionModifier" not in terminology_for(q)
    for text in ("two cysts in the liver", "multiple lesions in the right hepatic lobe", "a lesion in the liver",
                 "multiple lesions in liver segment VII"):
        assert "side" not in one(text).inferred, text
    row = {"organ": "liver", "case_id": "x", "location": "1、2"}  # both lobes coded
    results = {"location": AttributeAgreement()}
    score(row, one("Multiple hypodense lesions in the liver"), results)
    r = results["location"]
    assert (r.rows, r.agree_asserted, r.agree_any) == (1, 0, 1)  # counted as inferred only


@pytest.mark.parametrize("text, size", [
    ("2.3 x 1.8 cm cyst in the left kidney", [23.0, 18.0]), ("2.3×1.8 cm cyst in the left kidney", [23.0, 18.0]),
    ("2.3*1.8 cm cyst in the left kidney", [23.0, 18.0]), ("1.2 cm x 0.8 cm cyst in the left kidney", [12.0, 8.0]),
    ("12 x 8 x 10 mm cyst in the left kidney", [12.0, 8.0, 10.0]),
])
def test_measurements(text: str, size: list[float]) -> None:
    assert one(text).size_mm == size


def test_negation_and_uncertainty() -> None:
    q = one("1.2 cm nodule in the LLL without calcification, likely benign")
    assert q.specific_features == [] and q.uncertain
    q = one("Irregular mass in the pancreatic head. The margins are not clear.")
    assert q.surface == "ill-defined"  # a phrase containing a negation is not a negation trigger
    q = one("Round cyst in the left kidney; no mass in the liver.")
    assert q.organ == "kidney" and "liver" not in q.unknown_words
    assert parse_text("No focal liver lesion, no mass in the RUL.").queries == []
    assert one("Cannot exclude metastasis in S4a.").uncertain


def test_several_lesions_in_one_sentence() -> None:
    out = parse_text("spiculated nodule in the RUL and a 5 mm nodule in the lingula")
    assert [(q.sub_location, q.size_mm) for q in out.queries] == [("right upper lobe", None), ("left upper lobe", [5.0])]
    out = parse_text("2 cm cyst in the left kidney, 1 cm cyst in the right kidney and a hemangioma in segment 4a")
    assert [(q.organ, q.side or q.sub_location) for q in out.queries] == [
        ("kidney", "left"), ("kidney", "right"), ("liver", "segment IV")]
    # a feature with an indefinite article is no second lesion
    assert len(parse_text("hypodense mass in the liver with a calcified focus").queries) == 1


@pytest.mark.parametrize("text, places", [
    ("two metastases in segments V and VIII", ["segment V", "segment VIII"]),  # the noun "segment" elided
    ("hypodense lesions in segments 2 and 7", ["segment II", "segment VII"]),
    ("Three nodules: RUL 6 mm, RML 4 mm, LLL 5 mm", ["right upper lobe", "right middle lobe", "left lower lobe"]),
    ("Liver: 2 hypodense lesions, segment 4 (1.2 cm) and segment 8 (0.9 cm)", ["segment IV", "segment VIII"]),
    ("Two hypodense lesions in the liver: 2 cm in segment VII and 1 cm in segment II", ["segment VII", "segment II"]),
    # stays one: a singular noun spanning two segments; a list item without a place of its own
    ("metastasis in segments VI and VII", ["segment VI"]),
    ("nodules in segment 2 and 3 cm mass", ["segment II"]),
    ("Multiple cysts in the liver, the largest in segment 7, measuring 2 cm", ["segment VII"]),
])
def test_listed_places_give_one_lesion_each(text: str, places: list[str]) -> None:
    assert [q.sub_location for q in parse_text(text).queries] == places


def test_listed_items_keep_their_own_sizes() -> None:
    out = parse_text("Three nodules: RUL 6 mm, RML 4 mm, LLL 5 mm")
    assert [q.size_mm for q in out.queries] == [[6.0], [4.0], [5.0]]


@pytest.mark.parametrize("text, side, sub", [
    ("Nodule, R upper lobe, 7mm", "right", "right upper lobe"),  # single-letter sides before anatomy
    ("2 cm mass L kidney upper pole", "left", "upper pole"),
])
def test_single_letter_sides(text: str, side: str, sub: str) -> None:
    q = one(text)
    assert (q.side, q.sub_location) == (side, sub)


@pytest.mark.parametrize("text, organ, side, sub", [
    ("Small nodules in both lower lobes", "lung", "bilateral", None),
    ("bilateral upper lobe nodules", "lung", "bilateral", None),
    ("hypodense lesion in the right hepatic lobe (segment 6)", "liver", None, "segment VI"),  # refines the lobe
    ("lesion in the left lobe, segment VII", "liver", None, "left lobe"),  # VII is not in it: the first place
])
def test_lobes_plural_and_segments_refining_a_lobe(text: str, organ: str, side: str | None, sub: str | None) -> None:
    q = one(text)
    assert (q.organ, q.side, q.sub_location) == (organ, side, sub)


@pytest.mark.parametrize("text, surface", [
    ("annular mass of the sigmoid colon with a rough serosal surface", "ill-defined"),
    ("mass in the sigmoid colon, serosal surface irregular", "ill-defined"),
    ("nodule in the RUL with an indistinct interface", "ill-defined"),
    ("poorly demarcated mass in the left kidney", "ill-defined"),
    ("mass in the liver; its boundary is blurred", "ill-defined"),
    ("lobulated nodule in the LLL with lobulated contour", "ill-defined"),
    ("polyp in the rectum with smooth serosal surface", "well-defined"),
    ("cyst in the right kidney, sharp demarcation", "well-defined"),
    ("round cyst in the left kidney; the margins are clear", "well-defined"),
])
def test_margin_wording_of_other_organs(text: str, surface: str) -> None:
    assert one(text).surface == surface


def test_own_parenchyma_is_the_margin_and_a_neighbour_the_relation() -> None:
    q = one("round mass in the right kidney with indistinct border with the renal parenchyma")
    assert q.surface == "ill-defined" and q.relation is None
    q = one("hypodense mass in the pancreatic head; the interface with the duodenum is lost")
    assert q.relation == "closely related" and q.related_organ == "duodenum"


def test_heterogeneity_implied_and_stated() -> None:
    q = one("large mass in the left kidney with areas of necrosis")
    assert q.density_variation == "heterogeneous" and q.evidence["density_variation"].startswith("implied by")
    q = one("homogeneous mass in the left kidney with a cystic component")
    assert q.density_variation == "homogeneous" and "density_variation" not in q.evidence


def test_priors_stay_inferred_and_the_selection_ignores_them() -> None:
    from TextLesionSegLib.pipeline.selection import agreement

    q = one("HCC in segment 7")
    assert q.density_variation is None and q.inferred.get("density_variation") == "heterogeneous"
    assert "density_variation" in q.to_dict()["inferred"] and q.to_dict()["density_variation"] is None
    cyst = one("cyst in the left kidney")  # the table infers hypodense; the text says nothing
    assert cyst.density is None and cyst.inferred["density"] == "hypodense"

    class Candidate:
        body_xyz = (50.0, 0.0, 0.0)
        side = "left"
        lung_context = 0.0
        in_lung = False
        p85_hu, p15_hu, density_delta, diameter_mm = 60.0, 20.0, 40.0, 20.0  # hyperdense, contradicting hypodense

    total, factors = agreement(Candidate(), cyst)
    assert "density" not in factors  # an inferred density is never used as if it were said
    stated = one("hypodense cyst in the left kidney")
    assert "density" in agreement(Candidate(), stated)[1]


def test_holdout_alternatives_and_folds_restore_the_tables() -> None:
    from TextLesionSegLib.query import lexicon, vocabulary
    from TextLesionSegLib.query.holdout import alternatives, attest, held_out

    assert alternatives(r"\ba\b|(?:b|c)|[|]x|\|y") == [r"\ba\b", "(?:b|c)", "[|]x", r"\|y"]
    reports = {"A": ["a lobulated mass"], "B": ["a round mass"]}
    modules = [vocabulary, lexicon]
    att = attest(modules, reports, vocabulary.normalise)
    before = list(vocabulary.SHAPE), list(lexicon.SHAPE)
    with held_out("A", modules, att) as removed:  # "lobulated" only A attests: gone in A's fold
        assert (("TextLesionSegLib.query.vocabulary", "SHAPE"), r"\blobulated\b") in removed
        assert r"\blobulated\b" not in alternatives(vocabulary.SHAPE[1][0])
        assert parse_text("lobulated mass in the left kidney").queries[0].shape is None
    with held_out("B", modules, att):  # B's fold keeps it (A attests it)
        assert parse_text("lobulated mass in the left kidney").queries[0].shape == "irregular"
    assert (list(vocabulary.SHAPE), list(lexicon.SHAPE)) == before
    assert parse_text("lobulated mass in the left kidney").queries[0].shape == "irregular"
