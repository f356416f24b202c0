"""Malenia's model module for the generic trainer: ``build_model``, ``build_datasets``,
``collate_fn``, ``evaluate_batch`` (see ``TextLesionSegLib.training.trainer``).

Training windows are cut from volumes already on the working grid (the same preprocessing as
inference, ``pipeline.preprocess.to_working_grid``), so train and test see the same intensities.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import MaleniaConfig
from .model import MaleniaModel

#: voxels of a lesion a window must hold for the lesion to count as present in it [chosen]
MIN_LESION_VOXELS = 8
#: working-grid intensities (HU -175..250 -> 0..1) of "air or lung" and of "soft tissue or more"
AIR_LEVEL, SOFT_TISSUE_LEVEL = 0.05, 0.35
#: hard-negative centres kept per case (a random subset: enough variety, little memory)
HARD_CENTRES_PER_CASE = 4000
#: a lesion voxel lands anywhere in a training window but this many voxels from its faces
LESION_WINDOW_MARGIN = 8
#: the description a window is paired with names: a lesion in it, one elsewhere in the case, or
#: one the case does not hold, with these probabilities (when the case offers each) [chosen]
DESCRIPTION_MIX = (0.6, 0.15, 0.25)


def hard_negative_centres(image: np.ndarray, instances: np.ndarray, rng: np.random.Generator,
                          keep: int = HARD_CENTRES_PER_CASE) -> np.ndarray:
    """Voxels where soft tissue meets air or lung, away from every lesion: heart border, chest
    wall, diaphragm, bowel gas. Lesions look most like these places, so windows centred there teach
    the objectness head to stay silent where a synthetic lesion is absent [chosen]."""
    from scipy import ndimage

    air = ndimage.binary_dilation(image < AIR_LEVEL, iterations=2)
    near_lesion = ndimage.binary_dilation(instances > 0, iterations=4)
    pts = np.argwhere(air & (image > SOFT_TISSUE_LEVEL) & ~near_lesion)
    if len(pts) > keep:
        pts = pts[rng.choice(len(pts), keep, replace=False)]
    return pts


def build_model(config: dict[str, Any]) -> MaleniaModel:
    """A Malenia model from the config's ``model`` section (or a flat dict of MaleniaConfig fields)."""
    section = dict(config.get("model", config))
    return MaleniaModel(MaleniaConfig.from_dict(section))


class WindowDataset(torch.utils.data.Dataset):
    """Random (training) or fixed (validation) windows from in-memory cases, lesions anywhere in them.

    A case is ``{"image": (K,J,I) float 0..1, "instances": (K,J,I) int, "lesions": [{"label": int,
    "phrases": [8 str], optional "positives", "variants", "values" (head targets)}]}`` (see
    ``phrases.lesion_phrase_sets``), optionally with ``"descriptions"`` (label -> descriptions)
    and ``"absent"`` (descriptions of lesions it does not hold), each description ``{"phrases",
    "targets"}`` (``data.description_entry``). With them every window is paired with one
    description (``description_mix``, default :data:`DESCRIPTION_MIX`); with ``level`` (the body level of the model's window)
    every window carries the body-frame position channels (``pipeline.body_frame``).
    Training: with probability ``pos_fraction`` the window holds a random voxel of a random lesion
    at a random place (see :meth:`_center`), with probability ``hard_fraction`` it sits on a hard
    negative (see :func:`hard_negative_centres`), else anywhere. Left-right flips are never used: they would
    contradict the location attribute.
    """

    def __init__(self, cases: Sequence[dict[str, Any]], roi_size: Sequence[int], samples: int | None = None,
                 pos_fraction: float = 0.8, train: bool = True, seed: int = 0, intensity_jitter: float = 0.05,
                 hard_fraction: float = 0.0, level: float | None = None,
                 description_mix: Sequence[float] = DESCRIPTION_MIX):
        from ...pipeline.body_frame import body_frame

        self.cases = list(cases)
        self.description_mix = tuple(float(v) for v in description_mix)
        self.frames = [body_frame(c["image"], level) for c in self.cases] if level is not None else None
        self.roi = tuple(int(r) for r in roi_size)
        self.train = train
        self.pos_fraction = pos_fraction
        self.hard_fraction = hard_fraction
        self.jitter = intensity_jitter
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self._worker: int | None = None
        self._coords = [{les["label"]: np.argwhere(c["instances"] == les["label"]) for les in c["lesions"]} for c in self.cases]
        self._hard = [hard_negative_centres(c["image"], c["instances"], self.rng) if train and hard_fraction > 0
                      else np.zeros((0, 3), int) for c in self.cases]
        if train:
            self.length = samples or len(self.cases)
            self.items = None
        else:  # one window per lesion, holding it at a fixed random place: deterministic validation
            self.items = [(ci, les["label"]) for ci, c in enumerate(self.cases) for les in c["lesions"]] or \
                         [(ci, None) for ci in range(len(self.cases))]
            self.length = len(self.items)

    def __len__(self) -> int:
        return self.length

    def _center(self, ci: int, label: int | None, random_voxel: bool, rng: np.random.Generator | None = None
                ) -> np.ndarray:
        """Window centre: for a lesion, one of its voxels (random, or its centroid) moved by a random
        offset so that the voxel lands anywhere in the window (``LESION_WINDOW_MARGIN`` from its
        faces). Centring windows on lesions taught a first demo model that lesions sit in the middle:
        sliding-window inference, which sees them anywhere, then missed them [chosen]."""
        case = self.cases[ci]
        rng = rng or self.rng
        if label is not None and len(self._coords[ci][label]):
            pts = self._coords[ci][label]
            voxel = pts[rng.integers(len(pts))] if random_voxel else pts.mean(0).round().astype(int)
            reach = np.maximum(np.array(self.roi) // 2 - LESION_WINDOW_MARGIN, 0)
            return voxel + np.array([rng.integers(-r, r + 1) for r in reach])
        return np.array([rng.integers(s) for s in case["image"].shape])

    def __getitem__(self, idx: int) -> dict[str, Any]:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker != info.id:  # DataLoader workers copy the RNG: give each its own
            self._worker = info.id
            self.rng = np.random.default_rng([self.seed, info.id, int(info.seed % 2**32)])
        if self.train:
            ci = int(self.rng.integers(len(self.cases)))
            lesions = self.cases[ci]["lesions"]
            label = None
            draw = self.rng.random()
            if lesions and draw < self.pos_fraction:
                label = lesions[int(self.rng.integers(len(lesions)))]["label"]
            hard = self._hard[ci]
            if label is None and len(hard) and draw < self.pos_fraction + self.hard_fraction:
                center = hard[self.rng.integers(len(hard))]
            else:
                center = self._center(ci, label, random_voxel=True)
        else:  # validation: a fixed offset (and description) per item, so every epoch sees the same windows
            ci, label = self.items[idx]
            rng = np.random.default_rng([self.seed, idx])
            # every other validation window is asked about a lesion the case does not hold
            prefer = "absent" if idx % 2 else "here"
            return self.crop(ci, self._center(ci, label, random_voxel=False, rng=rng), rng, prefer)
        return self.crop(ci, center)

    def crop(self, ci: int, center: np.ndarray, rng: np.random.Generator | None = None,
             prefer: str | None = None) -> dict[str, Any]:
        """The window of ``roi`` around ``center`` (zero-padded at the borders) with its lesions."""
        case = self.cases[ci]
        shape = case["image"].shape
        start = [int(np.clip(c - r // 2, 0, max(s - r, 0))) for c, r, s in zip(center, self.roi, shape)]
        sl = tuple(slice(b, b + r) for b, r in zip(start, self.roi))
        img = torch.from_numpy(np.ascontiguousarray(case["image"][sl], dtype=np.float32))
        inst = torch.from_numpy(np.ascontiguousarray(case["instances"][sl]).astype(np.int64))
        pad = [p for r, s in zip(reversed(self.roi), reversed(img.shape)) for p in (0, r - s)]
        img, inst = F.pad(img, pad), F.pad(inst, pad)
        if self.train and self.jitter:
            img = img * (1 + self.jitter * float(self.rng.standard_normal())) + self.jitter * float(self.rng.standard_normal())
        masks, phrases, positives, values, labels = [], [], [], [], []
        for les in case["lesions"]:
            m = inst == les["label"]
            if int(m.sum()) >= MIN_LESION_VOXELS:
                masks.append(m)
                labels.append(les["label"])
                variants = les.get("variants") or [les["phrases"]]
                # training: a random prompt variant stands in for a user's words; validation: full phrases
                pick = variants[int(self.rng.integers(len(variants)))] if self.train else les["phrases"]
                phrases.append(list(pick))
                positives.append(list(les.get("positives") or les["phrases"]))
                values.append(list(les.get("values") or []))
        masks_t = torch.stack(masks).float() if masks else torch.zeros((0,) + self.roi)
        image = img[None]
        if self.frames is not None:
            image = torch.cat([image, torch.from_numpy(self.frames[ci].channels(start, self.roi))])
        item = {"image": image, "masks": masks_t, "phrases": phrases, "positives": positives, "values": values}
        query = self._description(case, labels, rng or self.rng, prefer)
        if query is not None:
            item["query"] = query
        return item

    def _description(self, case: dict[str, Any], in_view: list[int], rng: np.random.Generator,
                     prefer: str | None = None) -> dict[str, Any] | None:
        """One description for the window (see :data:`DESCRIPTION_MIX`): ``{"phrases",
        "targets", "lesion"}`` with ``lesion`` the index in ``in_view`` of the lesion it names,
        -1 when it names none in the window; None when the case has no descriptions. ``prefer``
        (validation) takes that kind when the case offers it; draws come from ``rng`` (validation:
        its item's own generator, the same description every epoch)."""
        described = case.get("descriptions") or {}
        absent = case.get("absent") or []
        if not described and not absent:
            return None
        here = [n for n, label in enumerate(in_view) if described.get(label)]
        elsewhere = [label for label in described if label not in in_view and described[label]]
        options = [(w, kind) for w, kind in zip(self.description_mix, ("here", "elsewhere", "absent"))
                   if {"here": here, "elsewhere": elsewhere, "absent": absent}[kind]]
        if not options:
            return None
        kinds = [o[1] for o in options]
        if prefer in kinds:
            kind = prefer
        else:
            w = np.array([o[0] for o in options])
            kind = kinds[int(rng.choice(len(options), p=w / w.sum()))]
        if kind == "here":
            n = here[int(rng.integers(len(here)))]
            texts, lesion = described[in_view[n]], n
        elif kind == "elsewhere":
            texts, lesion = described[elsewhere[int(rng.integers(len(elsewhere)))]], -1
        else:
            texts, lesion = absent, -1
        entry = texts[int(rng.integers(len(texts)))]
        return {"phrases": list(entry["phrases"]), "targets": list(entry["targets"]), "lesion": lesion}


@lru_cache(maxsize=1)
def _bank_entries() -> tuple[tuple[str, str, str], ...]:
    """(attribute, value, phrase) of every stored value, built once per process (collate asks for
    them on every batch); empty if the query package lacks them."""
    try:
        from .segmenter import value_bank_entries

        return tuple(value_bank_entries())
    except ImportError:
        return ()


def bank_phrases() -> list[str]:
    """All stored attribute-value phrases (extra negatives of MP-NCE)."""
    return [phrase for _, _, phrase in _bank_entries()]


def bank_groups() -> list[list[str]]:
    """Per attribute (in ``ATTRIBUTE_NAMES`` order), its stored value phrases other than
    "unspecified" (nothing to see), for the attribute-wise loss; empty without a bank."""
    from ...query.types import ATTRIBUTE_NAMES

    entries = _bank_entries()
    if not entries:
        return []
    return [[phrase for attr, value, phrase in entries if attr == name and value != "unspecified"]
            for name in ATTRIBUTE_NAMES]


def collate_fn(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images; keep per-sample lesion masks, phrases, head values and descriptions as lists
    (their counts differ)."""
    batch = {"image": torch.stack([it["image"] for it in items]), "masks": [it["masks"] for it in items],
             "phrases": [it["phrases"] for it in items], "positives": [it["positives"] for it in items],
             "values": [it.get("values", []) for it in items], "bank": bank_phrases(), "bank_groups": bank_groups()}
    if any("query" in it for it in items):
        batch["query"] = [it.get("query") for it in items]
    return batch


@torch.no_grad()
def evaluate_batch(model: MaleniaModel, batch: dict[str, Any]) -> dict[str, float]:
    """Text-guided Dice of each lesion in the window, asked for by its own 8 phrases (and, with
    the heads, its own values); with descriptions, also ``none_ok``: a description naming no
    lesion in the window leaves it empty."""
    from .inference import text_guided_window
    from .segmenter import MaleniaSegmenter

    bank = getattr(model, "_eval_bank", None)
    if bank is None:
        bank = MaleniaSegmenter(model).bank
        model._eval_bank = bank
    model.eval()
    dices, none_ok = [], []
    positives = batch.get("positives") or batch["phrases"]
    values = batch.get("values") or [[] for _ in batch["phrases"]]
    for b in range(batch["image"].shape[0]):
        image = batch["image"][b : b + 1]
        for n, (mask, phrases, pos) in enumerate(zip(batch["masks"][b], batch["phrases"][b], positives[b])):
            # select with the coarse location (as inference does), inject the full phrases
            gate = [next((p for p in pos if p in bank.phrases[0]), phrases[0])] + list(phrases[1:])
            emb = model.embed_phrases(phrases)[None]
            targets = torch.tensor([values[b][n]], dtype=torch.long) if n < len(values[b]) and values[b][n] else None
            prob = text_guided_window(model, image, emb, [gate], [[True] * len(phrases)], bank,
                                      gate_emb=model.embed_phrases(gate)[None], query_targets=targets)
            pred = (prob[0, 0] >= 0.5).float()
            dices.append(float(2 * (pred * mask).sum() / (pred.sum() + mask.sum()).clamp_min(1e-6)))
        query = (batch.get("query") or [None] * (b + 1))[b]
        if query is not None and query["lesion"] < 0 and model.heads is not None:
            emb = model.embed_phrases(query["phrases"])[None]
            prob = text_guided_window(model, image, emb, [query["phrases"]], [[True] * 8], bank,
                                      query_targets=torch.tensor([query["targets"]], dtype=torch.long))
            none_ok.append(float((prob[0, 0] >= 0.5).sum() == 0))
    out = {"dice": float(np.mean(dices))} if dices else {}
    if none_ok:
        out["none_ok"] = float(np.mean(none_ok))
    return out


def build_datasets(config: dict[str, Any], data_dir: Path) -> tuple[WindowDataset, WindowDataset]:
    """Training and validation windows from a dataset folder (``data.attributes``: an optional
    Malenia-format attribute table for MSD / KiTS23 folders; ``data.layout``: force a layout)."""
    from ...pipeline.body_frame import body_level
    from .data import load_cases

    data = dict(config.get("data") or {})
    model_cfg = MaleniaConfig.from_dict(dict(config.get("model", {})))
    roi = tuple(data.get("roi_size", model_cfg.roi_size))
    cases = load_cases(Path(data_dir), model_cfg, max_cases=data.get("max_cases"), attributes=data.get("attributes"),
                       layout=data.get("layout"),
                       descriptions=bool(model_cfg.attribute_heads and (model_cfg.w_choice or model_cfg.w_text_seg)))
    n_val = max(1, int(round(len(cases) * float(data.get("val_fraction", 0.1))))) if len(cases) > 1 else 0
    train_cases, val_cases = cases[n_val:], cases[:n_val]
    seed = int((config.get("train") or {}).get("seed", 0))
    level = body_level(model_cfg.hu_window) if model_cfg.position_channels else None
    train_ds = WindowDataset(train_cases, roi, samples=int(data.get("samples_per_epoch", 200)),
                             pos_fraction=float(data.get("pos_fraction", 0.8)), train=True, seed=seed,
                             hard_fraction=float(data.get("hard_negative_fraction", 0.0)), level=level,
                             description_mix=data.get("description_mix", DESCRIPTION_MIX))
    val_ds = WindowDataset(val_cases, roi, train=False, seed=seed + 1, level=level)
    return train_ds, val_ds


def training_texts(datasets: Sequence[WindowDataset]) -> list[str]:
    """Every phrase training (and validation) on ``datasets`` embeds: each lesion's phrases and
    their variants, the descriptions' phrases, the stored value bank."""
    texts = set(bank_phrases())
    for ds in datasets:
        for case in ds.cases:
            for les in case["lesions"]:
                texts |= set(les["phrases"]) | set(les.get("positives") or [])
                texts |= {p for v in les.get("variants") or [] for p in v}
            entries = [e for es in (case.get("descriptions") or {}).values() for e in es] + list(case.get("absent") or [])
            texts |= {p for e in entries for p in e["phrases"]}
    return sorted(texts)


def text_features(model: MaleniaModel, datasets: Sequence[WindowDataset]) -> dict[str, torch.Tensor]:
    """Phrase -> frozen text embedding ``(text_dim,)`` for :func:`training_texts` (a prepared cache
    stores them, so training on it needs no text encoder)."""
    texts = training_texts(datasets)
    emb = model.embed_phrases(texts).detach().cpu() if texts else torch.zeros(0, model.config.text_dim)
    return {t: emb[n] for n, t in enumerate(texts)}


def dry_run_model(model: dict[str, Any], demo_model: dict[str, Any]) -> None:
    """Shrink a full config's ``model`` section in place for a dry run: the demo's window and a
    narrow backbone (the code path only)."""
    model["roi_size"] = demo_model.get("roi_size", [32, 32, 32])
    model["feature_size"] = min(int(model.get("feature_size", 24)), 12)


def preprocessing(config: dict[str, Any]):
    """The working grid of a training config (``textlesionseg prepare`` writes its cache on it)."""
    from .data import preprocessing_for

    return preprocessing_for(MaleniaConfig.from_dict(dict(config.get("model", {}))))


def export_for_inference(run_folder: Path, out_folder: Path, data_dir: Path | None = None, **info: Any) -> Path:
    """Copy a trained checkpoint into a weights folder with the embeddings of every known phrase
    (stored attribute values + the training phrases of ``data_dir``, a dataset folder or a folder
    of them) inside ``model.safetensors``, so inference needs no text encoder for them. ``info``
    is recorded in ``config.json`` (extra).
    """
    from ...training.data import lesion_datasets
    from .phrases import coarse_location_values, lesion_phrase_sets

    model = MaleniaModel.from_pretrained(run_folder)
    phrases = set(bank_phrases())
    phrases |= {p for _, p in coarse_location_values()}
    if data_dir is not None:
        rng = np.random.default_rng(0)
        for dataset in lesion_datasets(data_dir, part="all"):
            for index in range(len(dataset)):
                for record in dataset.listed_lesions(index) or []:
                    sets = lesion_phrase_sets(record.as_row(), rng)
                    phrases |= set(sets["positives"]) | {p for v in sets["variants"] for p in v}
    model.set_known_phrases(sorted(phrases))
    model.config.extra.pop("text_cache_dir", None)
    model.config.extra.update(info)
    return model.save_pretrained(out_folder)
