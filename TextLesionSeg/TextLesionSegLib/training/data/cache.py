"""A prepared cache: every case already on a model's working grid, stored compactly, with the text
features its training will ask for (``textlesionseg prepare``).

    CACHE/cache.json                   what it holds: model, working spacing + HU window, cases, source
    CACHE/cases/<case_id>.npz          image (int16 HU on the working grid), label (uint8/int16
                                       instances), spacing/origin/direction, lesions (JSON text)
    CACHE/text_features.safetensors    the text encoder's output for every training text (optional)

``LesionDataset(CACHE)`` reads it like any dataset folder (layout "cache"), without SimpleITK, and
:func:`on_working_grid` skips the resampling when the grid already is the model's: a training run
then only reads, windows and crops. Nothing here unpickles (npz read with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ...pipeline.geometry import Image

CACHE_FORMAT = "textlesionseg-cache"
CACHE_VERSION = 1
TEXT_FEATURES = "text_features.safetensors"


def on_working_grid(case: Any, prep: Any) -> tuple[np.ndarray, np.ndarray]:
    """(image ``(K, J, I)`` float32 in 0..1, instances ``(K, J, I)`` int32) of a
    :class:`~.dataset.LesionCase` on the working grid of ``prep`` (a ``PreprocessingConfig``).

    A cached case already on that grid is only windowed; any other goes through the inference
    preprocessing (``pipeline.preprocess.to_working_grid``), its label nearest-neighbour.
    """
    lo, hi = float(prep.hu_window[0]), float(prep.hu_window[1])
    working = case.metadata.get("working") or {}
    if working and np.allclose(working["spacing"], prep.spacing) and np.allclose(working["hu_window"], (lo, hi)):
        vol = np.clip((case.image.array.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
        return vol, case.label.astype(np.int32)
    from ...pipeline.preprocess import to_working_grid, to_working_grid_label

    tensor, grid = to_working_grid(case.image, prep)
    inst = to_working_grid_label(case.image.with_array(case.label.astype(np.int32)), grid)
    return tensor[0, 0].numpy(), inst.astype(np.int32)


def read_manifest(root: Path) -> dict[str, Any]:
    """``cache.json`` of a cache folder; InputError when it is not one this version reads."""
    path = Path(root) / "cache.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    if meta.get("format") != CACHE_FORMAT or int(meta.get("version", 0)) > CACHE_VERSION:
        raise InputError(f"{path}: not a cache this version reads (format {CACHE_FORMAT} <= v{CACHE_VERSION})")
    return meta


def cache_cases(root: Path) -> list[Any]:
    """The cases of a cache folder as :class:`~.adapters.CaseSource` (reader "cache")."""
    from .adapters import CaseSource

    meta = read_manifest(root)
    cases = [CaseSource(c["case_id"], Path(root) / c["file"], Path(root) / c["file"], {}, None, c.get("part", ""),
                        reader="cache") for c in meta["cases"]]
    return cases


def read_cached(src: Any, root: Path) -> tuple[Image, np.ndarray, list[Any], dict[str, Any]]:
    """(image on the working grid in HU, instance label, lesion records, metadata) of a cached case."""
    from .dataset import LesionRecord

    try:
        data = np.load(src.image, allow_pickle=False)
        image = Image(array=data["image"].astype(np.float32), spacing=tuple(data["spacing"].tolist()),
                      origin=data["origin"], direction=data["direction"])
        label = data["label"].astype(np.int32)
        lesions = [LesionRecord(**rec) for rec in json.loads(str(data["lesions"]))]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read cached case {src.image}: {exc}") from exc
    meta = read_manifest(root)
    working = {"spacing": meta["spacing"], "hu_window": meta["hu_window"]}
    return image, label, lesions, {"layout": "cache", "working": working, "source_layout": meta.get("layout", "")}


def write_case(out: Path, case: Any, prep: Any) -> dict[str, Any]:
    """Write one :class:`~.dataset.LesionCase` onto ``prep``'s working grid; its ``cache.json`` entry."""
    from dataclasses import asdict

    from ...pipeline.preprocess import to_working_grid, to_working_grid_label

    lo, hi = float(prep.hu_window[0]), float(prep.hu_window[1])
    tensor, grid = to_working_grid(case.image, prep)
    hu = np.round(lo + tensor[0, 0].numpy() * (hi - lo)).astype(np.int16)  # 1 HU steps inside the window
    inst = to_working_grid_label(case.image.with_array(case.label.astype(np.int32)), grid)
    present = set(np.unique(inst).tolist()) - {0}
    lesions = []
    for rec in case.lesions:
        if rec.lesion_id in present:
            row = asdict(rec)
            row["voxels"] = int(np.count_nonzero(inst == rec.lesion_id))
            lesions.append(row)
    label = inst.astype(np.uint8 if inst.max(initial=0) < 256 else np.int16)
    name = f"cases/{case.case_id}.npz"
    (out / "cases").mkdir(parents=True, exist_ok=True)
    w = grid.working
    np.savez_compressed(out / name, image=hu, label=label, spacing=np.asarray(w.spacing), origin=w.origin,
                        direction=w.direction, lesions=np.asarray(json.dumps(lesions, default=str)))
    return {"case_id": case.case_id, "part": case.part, "file": name, "lesions": len(lesions)}


def write_cache(datasets: list[Any], out: Path, prep: Any, model: str, source: str,
                progress: Any = None, max_cases: int | None = None) -> dict[str, Any]:
    """Write every case of ``datasets`` (``LesionDataset``; the first ``max_cases``) to the cache
    folder ``out``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    entries, seen = [], set()
    for ds in datasets:
        for index in range(len(ds)):
            if max_cases is not None and len(entries) >= max_cases:
                break
            case = ds[index]
            if case.case_id in seen:
                raise InputError(f"two cases are named {case.case_id}; prepare one dataset folder at a time")
            seen.add(case.case_id)
            entries.append(write_case(out, case, prep))
            if progress:
                progress(case.case_id)
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "model": model, "spacing": list(prep.spacing),
            "hu_window": list(prep.hu_window), "roi_size": list(prep.roi_size), "source": source,
            "layout": datasets[0].layout if datasets else "", "cases": entries}
    (out / "cache.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def save_text_features(path: Path, texts: dict[str, Any]) -> int:
    """Store text -> feature tensor (``(D,)`` phrase embeddings or ``(L, D)`` word features) as float16
    in one safetensors file: ``features`` (all rows stacked), ``lengths`` (rows per text), ``texts``
    (UTF-8 bytes of the JSON list of texts). Returns the number of texts."""
    import torch
    from safetensors.torch import save_file

    names = sorted(texts)
    rows = [texts[t].detach().float().reshape(-1, texts[t].shape[-1]) for t in names]
    blob = json.dumps(names).encode("utf-8")
    save_file({"features": torch.cat(rows).half().contiguous() if rows else torch.zeros(0, 1, dtype=torch.float16),
               "lengths": torch.tensor([r.shape[0] for r in rows], dtype=torch.int64),
               "vector": torch.tensor([int(texts[t].dim() == 1) for t in names], dtype=torch.uint8),
               "texts": torch.tensor(list(blob), dtype=torch.uint8)}, str(path))
    return len(names)


def load_text_features(path: Path) -> dict[str, Any]:
    """text -> float32 tensor, as :func:`save_text_features` wrote them."""
    from safetensors.torch import load_file

    data = load_file(str(path))
    names = json.loads(bytes(data["texts"].tolist()).decode("utf-8"))
    out, start = {}, 0
    for name, n, vector in zip(names, data["lengths"].tolist(), data["vector"].tolist()):
        rows = data["features"][start : start + n].float()
        out[name] = rows[0] if vector else rows
        start += n
    return out


def preload_text_features(model: Any, data_dir: Path) -> int:
    """Give ``model`` the cached text features of a cache folder (no-op elsewhere): Malenia's phrase
    cache and LSMS's sentence cache, so training asks no text encoder. Returns how many were given."""
    path = Path(data_dir) / TEXT_FEATURES
    if not path.is_file():
        return 0
    feats = load_text_features(path)
    if hasattr(model, "embed_phrases"):  # Malenia: phrase -> (D,)
        phrases = [t for t, f in feats.items() if f.dim() == 1]
        if phrases:
            import torch

            model.text_cache.add(phrases, torch.stack([feats[p] for p in phrases]))
        return len(phrases)
    if hasattr(model, "encode_text") and hasattr(model, "_text_cache"):  # LSMS: sentence -> (L, D)
        import torch

        for text, rows in feats.items():
            if rows.dim() == 2:
                model._text_cache[text] = (rows, torch.ones(rows.shape[0], dtype=torch.bool))
        return len(feats)
    return 0
