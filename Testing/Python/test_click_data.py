"""Large-lesion click sets (models/interactive/click_data.py): the lesions SynthLesion lacks, seeded
like `textlesionseg synth`, really written and really large."""

from __future__ import annotations

import csv

import numpy as np
import SimpleITK as sitk

from TextLesionSegLib.models.interactive.click_data import LARGE_HOSTS, generate_large_set, plan_large_case


def test_plans_are_seeded_large_and_spread_over_the_hosts():
    plans = [plan_large_case(7, i) for i in range(40)]
    again = plan_large_case(7, 3)
    assert again["host"] == plans[3]["host"] and again["specs"] == plans[3]["specs"]
    assert {p["host"] for p in plans} == set(LARGE_HOSTS)
    for p in plans:
        (spec,) = p["specs"]
        assert 30.0 <= spec["size_mm"][0] <= 70.0 and spec["size_mm"][1] < spec["size_mm"][0]
        assert (spec["lesion_type"] == "lung cancer") == (p["host"] != "abdomen")
    assert {p["specs"][0]["relation"] for p in plans} == {"closely related", "not closely related"}


def test_a_large_lesion_case_is_written_with_its_lesion(tmp_path):
    out = generate_large_set(tmp_path / "large", count=1, seed=5, hosts=("abdomen",), size_mm=(40.0, 45.0),
                             progress=False)
    (row,) = list(csv.DictReader(open(out / "reports.csv", encoding="utf-8")))
    assert row["host"] == "abdomen" and row["part"] == "train"
    label = sitk.ReadImage(str(out / "labelsTr" / f"{row['case_id']}.nii.gz"))
    ml = float((sitk.GetArrayFromImage(label) > 0).sum()) * float(np.prod(label.GetSpacing())) / 1000.0
    # a 40-45 mm mass (or 3/4 of it, the synthesizer's retry for a crowded host) is several mL
    assert ml > 5.0 and abs(ml - float(row["measured_volume_ml"])) < 0.05 * ml
