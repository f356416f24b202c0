"""Malenia trains on the layouts users have (KiTS23 + a Malenia attribute table), not only on
synthetic folders: its loader goes through ``training.data.LesionDataset``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from test_adapters_datasets import write_kits_case, write_malenia_table
from TextLesionSegLib.models.malenia.training import build_datasets

TINY = {
    "model": {"backbone": "cnn", "cnn_channels": [4, 8, 8, 8], "hidden_dim": 16, "mask_dim": 8, "num_tokens": 2,
              "num_heads": 2, "ffn_dim": 16, "roi_size": [16, 16, 16], "spacing": [2.0, 2.0, 2.0]},
    "data": {"samples_per_epoch": 2, "val_fraction": 0.5},
}


def test_kits23_folder_with_attribute_table_gives_phrased_lesions(tmp_path: Path) -> None:
    root = tmp_path / "kits23"
    for case_id in ("case_00001", "case_00002"):
        write_kits_case(root / case_id, flip=False)
    table = tmp_path / "attrs.csv"
    write_malenia_table(table, "case_00001")
    train_ds, val_ds = build_datasets({**TINY, "data": {**TINY["data"], "attributes": str(table)}}, root)
    cases = train_ds.cases + val_ds.cases
    assert sorted(c["id"] for c in cases) == ["case_00001", "case_00002"]
    by_id = {c["id"]: c for c in cases}
    tumour, cyst = by_id["case_00001"]["lesions"]
    # the table's attributes reach Malenia's eight phrases; the cyst gets its side from its position
    assert any("irregular" in p for p in tumour["phrases"]) and any("hyperdense" in p for p in tumour["phrases"])
    assert any("left kidney" in p for p in tumour["phrases"])
    assert any("right kidney" in p for p in cyst["phrases"])
    assert all(len(l["phrases"]) == 8 for c in cases for l in c["lesions"])
    assert set(np.unique(by_id["case_00001"]["instances"])) >= {0, 1, 2}
