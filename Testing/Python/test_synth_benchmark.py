"""The SynthLesion definition: unseen = new combinations of seen values; plans are seeded."""

from __future__ import annotations

from TextLesionSegLib.training.data import benchmark as bench
from TextLesionSegLib.training.data.catalog import LESION_TYPES


def _combo(c: dict) -> tuple[str, str, str]:
    return (LESION_TYPES[c["lesion_type"]].organ, c["density"], c["shape"])


def test_unseen_combinations_are_new_but_made_of_seen_values() -> None:
    d = bench.load_definition()
    seen = {_combo(c) for c in d["splits"]["seen"]["combos"]}
    unseen = {_combo(c) for c in d["splits"]["unseen"]["combos"]}
    assert seen.isdisjoint(unseen)
    for organ, density, shape in unseen:
        assert any(o == organ and de == density for o, de, _ in seen), (organ, density)
        assert any(o == organ and s == shape for o, _, s in seen), (organ, shape)


def test_plans_are_deterministic_and_cover_every_combo() -> None:
    d = bench.load_definition()
    a = [bench.plan_split_case(d, "seen", "train", i) for i in range(8)]
    b = [bench.plan_split_case(d, "seen", "train", i) for i in range(8)]
    assert [(p["host"], p["specs"]) for p in a] == [(p["host"], p["specs"]) for p in b]
    firsts = {_combo(p["specs"][0]) for p in a}
    assert firsts == {_combo(c) for c in d["splits"]["seen"]["combos"]}


def test_referring_plans_have_one_target_and_distinct_distractors() -> None:
    d = bench.load_definition()
    for i in range(20):
        plan = bench.plan_split_case(d, "referring", "test", i)
        specs = plan["specs"]
        assert 2 <= len(specs) <= 3
        assert sum(s["described"] for s in specs) == 1
        assert len({(s["density"], s["shape"]) for s in specs}) == len(specs)
        assert {LESION_TYPES[s["lesion_type"]].organ for s in specs} == {plan["organ"]}
