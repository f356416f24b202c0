"""Adapters for the two public datasets that pair free text with 3D CT masks.

* **ReXGroundingCT** (Hugging Face ``rajpurkarlab/ReXGroundingCT``): ``dataset.json`` with lists
  ``train`` / ``val`` / ``test`` of ``{"name": "train_1741_b_2.nii.gz", "findings": {"0": text,
  ...}, ...}``; one mask per scan, ``segmentations/<name>``, shaped ``(F, H, W, D)`` as nibabel
  reports it (finding ``f`` is channel ``f``; each non-zero value one entity of that finding).
  The CT volumes are CT-RATE's, downloaded separately: they are found by file name anywhere under
  the folder (e.g. CT-RATE's ``dataset/train_fixed/train_1741/train_1741_b/...``). A finding is one
  lesion record (all its entities), described by its sentence. ``val`` (the public 50 scans) is
  the test part; ``test`` has no masks and is skipped.
* **CVPR-BiomedSegFM** (Hugging Face ``junma/CVPR-BiomedSegFM``, text-guided task):
  ``3D_train_npz_all/<modality>/<dataset>/*.npz`` (or ``3D_train_npz_random_10percent_16G``) with
  ``imgs`` (D, H, W; 0..255), ``gts`` and ``spacing``; ``3D_val_npz`` + ``3D_val_gt`` (test part);
  ``CVPR25_TextSegFMData_with_class.json``: dataset -> {class value: prompts, "instance_label": 0|1}.
  Only CT datasets are read (the models are CT models). Each class present is one record, described
  by its first prompt; with ``instance_label`` 1 each label value is one instance of class "1".

Choices where the published description is silent are listed in docs/data.md ([chosen]).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ...pipeline.geometry import Image

#: ReXGroundingCT's json lists -> our parts (its public "val" is the fair test; "test" has no masks)
REX_PARTS = {"train": "train", "val": "test", "test": "test"}
#: the metadata files ReXGroundingCT ships, in order of preference
REX_JSONS = ("dataset.json", "MICCAI_challenge_dataset.json")
#: CVPR-BiomedSegFM folders: training (the full set first: the 10 % coreset is a subset of it)
SEGFM_TRAIN = ("3D_train_npz_all", "3D_train_npz_random_10percent_16G")
SEGFM_VAL, SEGFM_GT = "3D_val_npz", "3D_val_gt"
SEGFM_PROMPTS = "CVPR25_TextSegFMData_with_class.json"
#: HU range the challenge's 0..255 CT intensities are mapped back to: the abdominal soft-tissue
#: window (W400 L40) its CT preprocessing used [chosen: the per-dataset window is not published]
SEGFM_HU = (-160.0, 240.0)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def _metadata(root: Path, find: Any, what: str) -> tuple[Path, Any]:
    """(path, content) of the metadata file ``find(root)`` names; InputError naming ``what`` when none."""
    path = find(root)
    if path is None:
        raise InputError(f"{root}: no {what}")
    return path, _read_json(path)


def rex_metadata(root: Path) -> Path | None:
    """The ReXGroundingCT metadata file of ``root`` (None when it is not such a folder)."""
    for name in REX_JSONS:
        path = Path(root) / name
        if path.is_file() and path.stat().st_size < 512 * 2**20:
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            entries = [e for part in REX_PARTS for e in (meta.get(part) or [])] if isinstance(meta, dict) else []
            if entries and isinstance(entries[0], dict) and "findings" in entries[0] and "name" in entries[0]:
                return path
    return None


def segfm_prompts_file(root: Path) -> Path | None:
    """The CVPR-BiomedSegFM prompt JSON of ``root``: the published name, else any top-level JSON
    whose entries carry ``instance_label`` (None when there is none)."""
    root = Path(root)
    named = root / SEGFM_PROMPTS
    candidates = [named] if named.is_file() else sorted(root.glob("*.json"))
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data and all(isinstance(v, dict) and "instance_label" in v for v in data.values()):
            return path
    return None


def _index(folders: list[Path], pattern: str, skip: tuple[Path, ...] = ()) -> dict[str, Path]:
    """File name -> path of every file matching ``pattern`` under ``folders`` (first one wins)."""
    out: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob(pattern)) if folder.is_dir() else []:
            if not any(s in path.parents for s in skip) and not path.name.startswith("._"):
                out.setdefault(path.name, path)
    return out


def rex_cases(root: Path) -> list[Any]:
    """ReXGroundingCT cases with a CT volume on disk (volumes not downloaded are skipped)."""
    from .adapters import CaseSource

    root = Path(root)
    meta_path, meta = _metadata(root, rex_metadata, "ReXGroundingCT dataset.json (lists train/val/test of name + findings)")
    seg_dirs = tuple(p for p in root.iterdir() if p.is_dir() and "segmentation" in p.name.lower())
    masks = _index(list(seg_dirs), "*.nii*")
    volumes = _index([root], "*.nii*", skip=seg_dirs)
    cases = []
    for part, ours in REX_PARTS.items():
        for entry in meta.get(part) or []:
            name = str(entry["name"])
            if name not in volumes:
                continue
            findings = sorted(((int(k), str(v)) for k, v in (entry.get("findings") or {}).items()), key=lambda kv: kv[0])
            texts = {k + 1: [text] for k, text in findings}
            cases.append(CaseSource(name.split(".nii")[0], volumes[name], masks.get(name), {}, "lung", ours,
                                    reader="rexgroundingct", texts=texts))
    if not cases:
        raise InputError(f"{root}: {meta_path.name} names no CT volume found under this folder (put CT-RATE's "
                         "volumes, e.g. dataset/train_fixed/..., or their files anywhere inside it)")
    return cases


def finding_axis_first(masks: np.ndarray, n_findings: int, shape: tuple[int, ...]) -> np.ndarray:
    """The mask array as ``(F, K, J, I)`` matching a CT array of ``shape`` (KJI).

    SimpleITK reads the published ``(F, H, W, D)`` NIfTI as ``(D, W, H, F)``, i.e. the finding axis
    last; a mask written the other way round has it first; a 3D mask is one finding (or a label map
    whose value ``f + 1`` is finding ``f`` when the scan has several). Raises InputError when no
    axis order fits the CT grid.
    """
    if masks.ndim == 3:
        if masks.shape != tuple(shape):
            raise InputError(f"mask grid {masks.shape} differs from the CT grid {tuple(shape)}")
        if n_findings <= 1:
            return (masks > 0)[None]
        return np.stack([masks == f + 1 for f in range(n_findings)])
    if masks.ndim == 4:
        if masks.shape[1:] == tuple(shape):
            return masks
        if masks.shape[:3] == tuple(shape):
            return np.moveaxis(masks, -1, 0)
    raise InputError(f"mask of shape {masks.shape} fits no finding-axis order of the CT grid {tuple(shape)}")


def read_rex(src: Any) -> tuple[Image, np.ndarray, list[tuple[int, str, int]]]:
    """(CT, instance map: finding ``f`` -> value ``f + 1``, [(value, sentence, voxels)]).

    The CT's geometry is used for both (the published masks carry an identity affine on the same
    voxel grid). Where findings overlap, the smaller one keeps the shared voxels [chosen].
    """
    import SimpleITK as sitk

    from ...pipeline.io import read_image

    image = read_image(src.image)
    masks = finding_axis_first(sitk.GetArrayFromImage(sitk.ReadImage(str(src.label))), len(src.texts),
                               image.array.shape)
    label = np.zeros(image.array.shape, np.int32)
    found = []
    sizes = {value: int(np.count_nonzero(masks[value - 1])) for value in src.texts if value - 1 < len(masks)}
    for value in sorted(sizes, key=lambda v: -sizes[v]):  # largest first: smaller findings are written over it
        label[masks[value - 1] > 0] = value
    for value in sorted(sizes):
        voxels = int(np.count_nonzero(label == value))
        if voxels:
            found.append((value, src.texts[value][0], voxels))
    return image, label, found


def _segfm_dataset_name(path: Path, prompts: dict[str, Any]) -> str | None:
    """The prompt-JSON key of an npz: its folder's name, else the longest key its file name starts with."""
    if path.parent.name in prompts:
        return path.parent.name
    keys = [k for k in prompts if path.stem.startswith(k)]
    return max(keys, key=len) if keys else None


def _is_ct(path: Path, dataset: str) -> bool:
    return "CT" in path.parts[:-1] or dataset.upper().startswith("CT")


def segfm_cases(root: Path) -> list[Any]:
    """CVPR-BiomedSegFM CT cases (training npz with ``gts``; validation npz with a ``3D_val_gt`` file)."""
    from .adapters import CaseSource

    root = Path(root)
    prompts_path, prompts = _metadata(root, segfm_prompts_file, f"{SEGFM_PROMPTS} (dataset -> class prompts, instance_label)")
    gts = _index([root / SEGFM_GT], "*.npz")
    cases, seen = [], set()
    folders = [(root / d, "train") for d in SEGFM_TRAIN] + [(root / SEGFM_VAL, "test")]
    if not any(f.is_dir() for f, _ in folders):  # a folder holding npz files directly: training data
        folders = [(root, "train")]
    for folder, part in folders:
        for path in sorted(folder.rglob("*.npz")) if folder.is_dir() else []:
            if path.name in seen or SEGFM_GT in path.parts:
                continue
            dataset = _segfm_dataset_name(path, prompts)
            if dataset is None or not _is_ct(path.relative_to(root), dataset):
                continue
            seen.add(path.name)
            entry = prompts[dataset]
            texts = {int(k): [v] if isinstance(v, str) else [str(t) for t in v]
                     for k, v in entry.items() if k != "instance_label" and str(k).isdigit()}
            label = gts.get(path.name) if part == "test" else path
            cases.append(CaseSource(path.stem, path, label, {}, None, part, reader="biomedsegfm", texts=texts,
                                    instance_label=bool(entry.get("instance_label"))))
    if not cases:
        raise InputError(f"{root}: no CT npz file named in {prompts_path.name} (expected {SEGFM_TRAIN[0]}/CT/<dataset>/*.npz)")
    return cases


def _npz(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)  # never unpickle a downloaded file
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def segfm_spacing(spacing: np.ndarray) -> tuple[float, float, float]:
    """(I, J, K) spacing from an npz ``spacing``: its two equal values are the in-plane ones; SimpleITK's
    (x, y, z) order is assumed when they do not say [chosen: the order is not published]."""
    s = [float(v) if float(v) > 0 else 1.0 for v in np.asarray(spacing, float).ravel()[:3]]
    if len(s) < 3:
        return (1.0, 1.0, 1.0)
    if abs(s[1] - s[2]) < 1e-6 and abs(s[0] - s[1]) > 1e-6:  # (z, y, x)
        return (s[2], s[1], s[0])
    return (s[0], s[1], s[2])


def read_segfm(src: Any) -> tuple[Image, np.ndarray, list[tuple[int, str, int]]]:
    """(CT with 0..255 mapped onto :data:`SEGFM_HU`, instance map, [(value, first prompt, voxels)])."""
    data = _npz(src.image)
    if "imgs" not in data.files:
        raise InputError(f"{src.image}: no 'imgs' array")
    lo, hi = SEGFM_HU
    hu = lo + data["imgs"].astype(np.float32) * ((hi - lo) / 255.0)
    image = Image(array=hu, spacing=segfm_spacing(data["spacing"]) if "spacing" in data.files else (1.0, 1.0, 1.0))
    gts_file = _npz(src.label) if src.label != src.image else data
    if "gts" not in gts_file.files:
        raise InputError(f"{src.label}: no 'gts' array")
    gts = gts_file["gts"]
    if gts.shape != hu.shape:
        raise InputError(f"{src.label}: gts {gts.shape} differs from imgs {hu.shape}")
    values = [int(v) for v in np.unique(gts) if v]
    found = []
    label = np.zeros(gts.shape, np.int32)
    for value in values:
        texts = src.texts.get(1 if src.instance_label else value)
        if not texts:
            continue  # a class the prompt file does not describe
        mask = gts == value
        label[mask] = value
        found.append((value, texts[0], int(mask.sum())))
    return image, label, found


def read_public(src: Any) -> tuple[Image, np.ndarray, list[tuple[int, str, int]]]:
    """Read a case of either public dataset (see :func:`read_rex`, :func:`read_segfm`)."""
    if src.reader == "rexgroundingct":
        return read_rex(src)
    if src.reader == "biomedsegfm":
        return read_segfm(src)
    raise InputError(f"unknown public reader '{src.reader}'")
