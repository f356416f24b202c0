"""Lesion candidates and what can be measured of them: the layer both models' selection shares.

A model answers a description with a probability map (every lesion it sees for those words) and
a score map (the probability times the network's own confidence that this is the lesion the
words describe; :meth:`models.base.LesionSegmenter.candidate_maps`). Here the map is cut into 3D
connected candidates (26-connected, :func:`postprocess.label_components`) and each is measured
on the CT [chosen, issue 16]:

- **side**: its centroid against the body's own midline (:mod:`.body_frame`; the working grid is
  LPS-canonical, so larger I is the patient's left whatever the file's storage);
- **density**: the median HU of its core (:func:`lesion_measures.in_plane_core`) against the
  tissue around it — the median of a shell 2-4 voxels out, soft-tissue values only — or, for a
  lesion in aerated lung, against soft tissue (:data:`LUNG_REFERENCE_HU`, as Malenia's code book
  compares lung lesions with soft tissue);
- **size**: volume and longest axial diameter (RECIST, :func:`measure.axial_diameters`);
- **shape**: the shape index (sphericity over a digital ball's, :func:`lesion_measures.shape_index`);
- **lung context**: the share of that shell at aerated-lung density.

:mod:`.selection` compares these with the words; nothing here reads the text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .body_frame import BodyFrame
from .postprocess import label_components

#: HU of the reference tissue for a lesion inside aerated lung (soft tissue) [chosen]
LUNG_REFERENCE_HU = 40.0
#: HU range of aerated lung in the shell around a candidate
LUNG_HU = (-1000.0, -500.0)
#: shell voxels in this HU range are the surrounding tissue a density is compared with
SOFT_TISSUE_HU = (-50.0, 350.0)
#: a candidate whose shell is at least this share aerated lung lies in the lung
LUNG_CONTEXT_MIN = 0.3
#: core voxels denser than this are solid (not aerated or ground glass)
SOLID_HU = -300.0
#: at most this many candidates are measured (largest network mass first)
MAX_CANDIDATES = 40


@dataclass
class Candidate:
    """One 3D connected component of a probability map, with its measurements.

    Attributes:
        label: component id in the label map :func:`find_candidates` returns.
        voxels, volume_mm3: its size.
        mean_prob: the model's mean probability inside it.
        network_score: the network's own score for the words: Σ score map / Σ probability of the
            description's map inside it (without a score map, that map's mean).
        lesion_score: the mean of the model's text-free lesion map inside it (how much it is a
            lesion whatever the words), or None when the model has no such map.
        centroid_kji: centre on the working grid; ``body_xyz``: the same in body coordinates.
        side: "left" / "right" of the patient.
        diameter_mm: longest axial diameter.
        core_hu, reference_hu: core median HU and the surrounding tissue's HU.
        p15_hu, p85_hu: spread of the core HU (mixed density).
        high_hu: 90th percentile of the core HU (the densest part: in lung, a solid lesion's own
            density even where its mask takes in aerated rim on thick slices).
        solid_fraction: share of the core denser than :data:`SOLID_HU` (in lung: solid vs ground glass).
        lung_context: share of the surrounding shell at aerated-lung density.
        shape_index: sphericity over a digital ball's (``None`` below 3 slices).
        elongation: longest over shortest principal axis of its voxels in mm (1 for a ball;
            vessels and bowel run 3 and more).
    """

    label: int
    voxels: int
    volume_mm3: float
    mean_prob: float
    network_score: float
    centroid_kji: tuple[float, float, float]
    body_xyz: tuple[float, float, float]
    side: str
    diameter_mm: float
    core_hu: float
    reference_hu: float
    p15_hu: float
    p85_hu: float
    high_hu: float
    solid_fraction: float
    lung_context: float
    shape_index: float | None
    elongation: float = 1.0
    lesion_score: float | None = None

    @property
    def in_lung(self) -> bool:
        """Whether it lies in aerated lung."""
        return self.lung_context >= LUNG_CONTEXT_MIN

    @property
    def density_delta(self) -> float:
        """Core HU minus the reference tissue's; in aerated lung the densest part's (``high_hu``).

        On thick slices a lung lesion's mask takes in some aerated rim, which drags its median
        toward air: solid nodules measured -140..-175 HU and were read as "not soft tissue" on a
        real-CT validation set (CHESTVAL, session 8). Their densest tenth is their own density;
        a ground-glass lesion has no solid tenth, so it still reads low."""
        return (self.high_hu if self.in_lung else self.core_hu) - self.reference_hu

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (rounded)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 3)
            elif isinstance(value, tuple):
                out[key] = [round(float(v), 3) for v in value]
        return out


def _grow(box: tuple[slice, ...], by: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(max(b.start - g, 0), min(b.stop + g, s)) for b, g, s in zip(box, by, shape))


def _shell(region: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Voxels between ``inner`` and ``outer`` in-plane dilations of ``region`` (one slice up/down)."""
    from scipy import ndimage

    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    st[0, 1, 1] = st[2, 1, 1] = True
    near = ndimage.binary_dilation(region, st, iterations=inner) if inner else region
    far = ndimage.binary_dilation(region, st, iterations=outer)
    return far & ~near


def _elongation(region: np.ndarray, spacing_ijk: Sequence[float], direction: np.ndarray) -> float:
    """Longest over shortest principal axis (standard deviation) of the region's voxels in mm."""
    pts = np.argwhere(region)[:, ::-1] * np.asarray(spacing_ijk, float)  # IJK in mm
    if len(pts) < 4:
        return 1.0
    pts = pts @ np.asarray(direction, float).T
    sd = np.sqrt(np.clip(np.linalg.eigvalsh(np.cov(pts.T)), 0.0, None))
    # a voxel's own extent keeps one-slice candidates from an infinite ratio
    sd = np.sqrt(sd**2 + (min(spacing_ijk) ** 2) / 12.0)
    return float(sd.max() / sd.min())


def _axial_diameter(region: np.ndarray, spacing_ijk: Sequence[float], direction: np.ndarray) -> float:
    from .geometry import Image
    from .measure import axial_diameters

    return float(axial_diameters(Image(array=region, spacing=tuple(spacing_ijk), direction=direction), region)[0])


def measure_candidate(label: int, region: np.ndarray, box: tuple[slice, ...], prob: np.ndarray,
                      score: np.ndarray | None, hu: np.ndarray, others: np.ndarray, frame: BodyFrame,
                      spacing_ijk: Sequence[float], direction: np.ndarray, text_prob: np.ndarray | None = None,
                      lesions: np.ndarray | None = None) -> Candidate:
    """Measure one component ``region`` (bool, on the box ``box`` of the working grid).

    ``prob`` (the map the component was cut from), ``score``, ``hu``, ``others`` (voxels of any
    candidate), ``text_prob`` (the description's own map; default ``prob``) and ``lesions`` (the
    text-free lesion map, optional) are the box's arrays."""
    from .lesion_measures import core_stats, core_values, shape_index

    p = prob[region].astype(np.float64)
    said = p if text_prob is None else text_prob[region].astype(np.float64)
    mass = float(said.sum())
    network = float(score[region].sum() / max(mass, 1e-12)) if score is not None else float(said.mean())
    idx = np.argwhere(region).mean(axis=0) + np.array([b.start for b in box])
    shell = _shell(region, 2, 4) & ~others
    values = hu[shell]
    lung = float(((values >= LUNG_HU[0]) & (values <= LUNG_HU[1])).mean()) if values.size else 0.0
    soft = values[(values >= SOFT_TISSUE_HU[0]) & (values <= SOFT_TISSUE_HU[1])]
    core = core_values(hu, region, spacing_ijk)
    stats = core_stats(hu, region, spacing_ijk, core)
    if lung >= LUNG_CONTEXT_MIN:
        reference = LUNG_REFERENCE_HU
    else:
        reference = float(np.median(soft)) if soft.size else stats["median"]
    slices = int(region.any(axis=(1, 2)).sum())
    index = shape_index(region, spacing_ijk) if slices >= 3 and region.sum() >= 27 else None
    return Candidate(
        label=int(label), voxels=int(region.sum()), volume_mm3=float(region.sum() * np.prod(spacing_ijk)),
        mean_prob=float(p.mean()), network_score=network, centroid_kji=tuple(float(v) for v in idx),
        body_xyz=tuple(float(v) for v in frame.normalised(idx)[0]), side=frame.side(idx),
        diameter_mm=_axial_diameter(region, spacing_ijk, direction), core_hu=stats["median"],
        reference_hu=reference, p15_hu=stats["p15"], p85_hu=stats["p85"],
        high_hu=float(np.percentile(core, 90)), solid_fraction=float((core > SOLID_HU).mean()),
        lung_context=lung,
        shape_index=None if index is None else float(index), elongation=_elongation(region, spacing_ijk, direction),
        lesion_score=None if lesions is None else float(lesions[region].mean()))


def cut_map(prob: np.ndarray, lesions: np.ndarray | None, threshold: float = 0.5) -> np.ndarray:
    """The map candidates are cut from: the description's map ``prob``, plus every component of
    the text-free lesion map ``lesions`` that touches none of its components (within one voxel),
    with the lesion map's values there. Not their voxel-wise maximum: that merged a described
    lesion with neighbouring lesion-map blobs into one candidate that matched neither (measured
    in session 6, docs/models/lsms.md)."""
    if lesions is None:
        return prob
    from scipy import ndimage

    own = prob >= threshold
    extra, count = label_components(lesions >= threshold)
    if count == 0:
        return prob
    near = ndimage.binary_dilation(own, np.ones((3, 3, 3), bool)) if own.any() else own
    touched = np.unique(extra[near & (extra > 0)])
    added = np.isin(extra, np.setdiff1d(np.arange(1, count + 1), touched))
    return np.where(added, lesions, prob).astype(prob.dtype, copy=False)


def find_candidates(prob: np.ndarray, score: np.ndarray | None, hu: np.ndarray, frame: BodyFrame,
                    spacing_ijk: Sequence[float], threshold: float = 0.5, min_mm3: float = 30.0,
                    direction: np.ndarray | None = None, lesions: np.ndarray | None = None,
                    text_prob: np.ndarray | None = None) -> tuple[np.ndarray, list[Candidate]]:
    """3D candidates of ``prob >= threshold`` on the working grid, specks (< ``min_mm3``) removed,
    each measured (see the module docstring). ``score``: the network's score map (None: the
    probability itself); ``hu``: the CT in HU on the same grid; ``direction``: its direction
    cosines (diameters are physical). With a text-free lesion map ``lesions``, ``prob`` is the map
    the candidates are cut from — :func:`cut_map` of the description's map and ``lesions``, which
    the caller also shows as the answer — and ``text_prob`` the description's own map: the
    network's score comes from it alone, and each candidate carries its
    :attr:`Candidate.lesion_score`. Returns (labels, candidates)."""
    from scipy import ndimage

    direction = np.eye(3) if direction is None else np.asarray(direction)
    text_prob = prob if text_prob is None else text_prob
    labels, n = label_components(prob >= threshold)
    if n == 0:
        return labels, []
    voxel_mm3 = float(np.prod(spacing_ijk))
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones(labels.shape, np.float32), labels, index)
    mass = ndimage.sum_labels(prob, labels, index)
    keep = index[sizes * voxel_mm3 >= min_mm3]
    keep = keep[np.argsort(-mass[keep - 1])][:MAX_CANDIDATES]
    labels = np.where(np.isin(labels, keep), labels, 0).astype(np.int32)
    boxes = ndimage.find_objects(labels)
    occupied = labels > 0
    out = []
    for lab in keep:
        box = _grow(boxes[lab - 1], (2, 5, 5), labels.shape)
        region = labels[box] == lab
        out.append(measure_candidate(int(lab), region, box, prob[box], None if score is None else score[box],
                                     hu[box], occupied[box] & ~region, frame, spacing_ijk, direction,
                                     text_prob[box], None if lesions is None else lesions[box]))
    return labels, out
