"""``LSMSSegmenter``: LSMS behind the pipeline's :class:`LesionSegmenter` interface.

The pipeline hands over the whole volume on the LSMS working grid (LPS-canonical, resampled to
the config's spacing, wide HU window -> 0..1). Here: pick the body's axial slices (or the user's
ROI), run the 2D network slice by slice with neighbours (and, with ``position_channels``, the
body-frame coordinates) as channels, and stack to 3D. Which connected lesion the sentence refers
to is chosen by the pipeline's shared selection (``pipeline.answer``), like every model's; the
calibrated "not found" thresholds ship in ``config.json`` (``extra.selection``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...pipeline.body_frame import body_frame, body_level
from ..base import InferenceSettings, LesionSegmenter, PreprocessingConfig, ProgressCallback
from . import SPEC
from .slices import slice_stack


class LSMSSegmenter(LesionSegmenter):
    """A loaded LSMS model answering referring descriptions on whole CT volumes.

    ``settings.extra`` understands ``"roi_kji"``: ``((k0, j0, i0), (k1, j1, i1))`` on the working
    grid, to restrict the search; ``"slice_batch"``: slices per forward pass (default 8).
    """

    capabilities = SPEC.capabilities

    def __init__(self, model: Any, name: str = "lsms", version: str = "0", device: str = "cpu"):
        from .training import preprocessing_for

        from ..text_encoders import SentenceFeatureCache

        self.model = model.eval().to(device)
        if not model.config.finetune_text:  # a fine-tuned encoder ships in the weights: nothing to cache
            model.sentence_cache = SentenceFeatureCache(model.config.text_model, model.config.text_max_length)
        self.device = device
        self.name = name
        self.version = version
        self.preprocessing: PreprocessingConfig = preprocessing_for(model.config)
        self.read_min_scores(model.config.extra)

    @classmethod
    def from_pretrained(cls, weights_dir: Path, device: str = "cpu") -> "LSMSSegmenter":
        """Load ``model.safetensors`` + ``config.json`` from ``weights_dir`` (``ModelError`` if unusable)."""
        from .model import LSMSModel

        import torch

        dev = device or "auto"
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        weights_dir = Path(weights_dir)
        return cls(LSMSModel.from_pretrained(weights_dir, dev), name=weights_dir.name, device=dev)

    # ---- slices ------------------------------------------------------------------------
    def slice_probabilities(self, volume: np.ndarray, text: str, ks: Sequence[int],
                            box_ji: tuple[slice, slice], batch: int = 8,
                            progress: ProgressCallback | None = None, stage: str = "",
                            frame: Any = None, lesions: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (K, J, I) of ``text`` on slices ``ks`` of ``volume`` (0 elsewhere);
        ``frame``: the volume's body frame (computed here when the model reads positions).
        ``lesions``: a (K, J, I) array that receives the text-free objectness output, when the
        network has one (:attr:`LSMSModel.has_objectness`)."""
        import torch

        model = self.model
        context = model.config.context_slices
        if model.config.position_channels and frame is None:
            frame = body_frame(volume, body_level(model.config.hu_window))
        out = np.zeros(volume.shape, dtype=np.float32)
        words, mask = model.encode_text([text])
        rows, cols = box_ji
        shape_ji = (len(range(*rows.indices(volume.shape[1]))), len(range(*cols.indices(volume.shape[2]))))
        for start in range(0, len(ks), batch):
            chunk = list(ks[start : start + batch])
            stacks = np.stack([slice_stack(volume, k, context)[:, rows, cols] for k in chunk])
            x = torch.from_numpy(stacks).to(self.device)
            position = None
            if model.config.position_channels:
                start_ji = (rows.start or 0, cols.start or 0)
                position = torch.from_numpy(np.stack([frame.slice_channels(k, start_ji, shape_ji) for k in chunk]))
                position = position.to(self.device)
            with torch.no_grad():
                result = model(x, words.expand(len(chunk), -1, -1), mask.expand(len(chunk), -1), position)
            prob = torch.sigmoid(result["logits"][:, 0]).cpu().numpy()
            every = torch.sigmoid(result["objectness"][:, 0]).cpu().numpy() if "objectness" in result else None
            for n, k in enumerate(chunk):
                out[k, box_ji[0], box_ji[1]] = prob[n]
                if lesions is not None and every is not None:
                    lesions[k, box_ji[0], box_ji[1]] = every[n]
            if progress is not None:
                progress(stage, min(1.0, (start + len(chunk)) / max(len(ks), 1)))
        return out

    def _search_region(self, volume: np.ndarray, settings: InferenceSettings) -> tuple[list[int], tuple[slice, slice]]:
        """Body slices (any voxel denser than air) inside the ROI, and the ROI's rows/columns."""
        roi = settings.extra.get("roi_kji") if settings.extra else None
        k0, j0, i0 = (0, 0, 0)
        k1, j1, i1 = volume.shape
        if roi is not None:
            (k0, j0, i0), (k1, j1, i1) = [tuple(int(v) for v in corner) for corner in roi]
            k0, j0, i0 = max(k0, 0), max(j0, 0), max(i0, 0)
            k1, j1, i1 = min(k1, volume.shape[0]), min(j1, volume.shape[1]), min(i1, volume.shape[2])
        body = (volume[k0:k1, j0:j1, i0:i1] > body_level(self.model.config.hu_window)).any(axis=(1, 2))
        ks = [k0 + int(k) for k in np.flatnonzero(body)]
        return ks, (slice(j0, j1), slice(i0, i1))

    # ---- the interface -----------------------------------------------------------------
    def predict(self, volume: Any, queries: Sequence[Any], settings: InferenceSettings,
                progress: ProgressCallback | None = None) -> Any:
        """What the network sees for each query, ``(Q, K, J, I)`` on CPU: every candidate lesion
        (the pipeline's selection chooses among them)."""
        return self.candidate_maps(volume, queries, settings, progress)[0]

    def candidate_maps(self, volume: Any, queries: Sequence[Any], settings: InferenceSettings,
                       progress: ProgressCallback | None = None) -> tuple[Any, None, Any]:
        """``(probability, None, lesions)``: each query's map, and — when the network has the
        text-free objectness output — every lesion it sees whatever the words, ``(K, J, I)``: the
        mean of that output over the queries' passes (its target never depends on the words, so
        the mean only averages out what the words still move), else ``None``."""
        import torch

        vol = volume[0, 0].detach().cpu().numpy().astype(np.float32) if hasattr(volume, "detach") \
            else np.asarray(volume, dtype=np.float32)[0, 0]
        ks, box = self._search_region(vol, settings)
        batch = int((settings.extra or {}).get("slice_batch", 8))
        frame = body_frame(vol, body_level(self.model.config.hu_window)) if self.model.config.position_channels else None
        every = self.model.has_objectness
        lesions = np.zeros(vol.shape, np.float32) if every else None
        total = np.zeros(vol.shape, np.float32) if every else None  # running sum: one volume, not Q
        maps = []
        for q, query in enumerate(queries):
            maps.append(self.slice_probabilities(vol, query.text, ks, box, batch, progress,
                                                 f"LSMS: description {q + 1}/{len(queries)}", frame, lesions))
            if total is not None:
                total += lesions
        if not maps:
            return torch.zeros((0,) + vol.shape), None, None
        lesion_map = torch.from_numpy(total / len(maps)) if total is not None else None
        return torch.from_numpy(np.stack(maps)), None, lesion_map
