"""Prompt-free read-out: connected lesions → their token, attributes and lesion type (steps II-IV)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...query.types import ATTRIBUTE_NAMES
from ...pipeline.postprocess import label_components
from ..base import InferenceSettings
from .inference import predict_attributes

if TYPE_CHECKING:
    from .segmenter import MaleniaSegmenter

MAX_LESIONS = 20
#: smaller components (voxels on the working grid) are noise, not lesions [chosen]
MIN_COMPONENT_VOXELS = 8


def _window_slices(center: np.ndarray, roi: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A window of size ``roi`` around ``center`` kept inside ``shape`` where possible."""
    out = []
    for c, r, s in zip(center, roi, shape):
        start = int(np.clip(round(c) - r // 2, 0, max(s - r, 0)))
        out.append(slice(start, start + r))
    return tuple(out)


@torch.no_grad()
def describe_components(seg: "MaleniaSegmenter", inputs: torch.Tensor, prob: torch.Tensor,
                        settings: InferenceSettings) -> list[dict[str, Any]]:
    """Split ``prob`` (K, J, I) into lesions and describe each from the token that explains it best;
    ``inputs`` ``(1, C, K, J, I)`` are the model's inputs (``MaleniaSegmenter.model_input``)."""
    from scipy import ndimage

    model, bank = seg.model, seg.bank
    device = next(model.parameters()).device
    # 26-connected, like every other read-out of the project (and Slicer's islands tool)
    labels, n = label_components((prob >= settings.threshold).numpy())
    if n == 0:
        return []
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    order = [i + 1 for i in np.argsort(-sizes) if sizes[i] >= MIN_COMPONENT_VOXELS][:MAX_LESIONS]
    roi = tuple(seg.preprocessing.roi_size)
    inputs = inputs[0]  # (C, K, J, I): the image, and the position channels if read
    lesions = []
    for lab in order:
        comp = labels == lab
        center = np.array(ndimage.center_of_mass(comp))
        sl = _window_slices(center, roi, comp.shape)
        patch = inputs[(slice(None),) + sl]
        pad = [p for r, s in zip(reversed(roi), reversed(patch.shape[1:])) for p in (0, r - s)]
        patch = torch.nn.functional.pad(patch, pad)[None].to(device)
        out = model(patch)
        target = torch.nn.functional.pad(torch.from_numpy(comp[sl]).float(), pad).to(device).flatten()
        masks = (out["masks"][-1][0].sigmoid() > 0.5).float().flatten(1)
        dice = 2 * (masks @ target) / (masks.sum(1) + target.sum() + 1e-6)
        obj = out["object_logits"][0].sigmoid()
        token = int((dice * obj).argmax())
        attrs = predict_attributes(model, out["align"][-1][0, token : token + 1], bank)[0]
        attributes = {name: (bank.values[a][i], round(sim, 4)) for a, (name, (i, sim)) in enumerate(zip(ATTRIBUTE_NAMES, attrs))}
        if model.heads is not None:  # attributes as categories where the heads know them
            attributes.update(_head_attributes(model, out["head_inputs"][0, token : token + 1]))
        lesion_type = _lesion_type({k: v for k, (v, _) in attributes.items()})
        p = prob * torch.from_numpy(comp)
        lesions.append({"probability": p, "attributes": attributes, "lesion_type": lesion_type,
                        "score": float(prob[torch.from_numpy(comp)].mean()) * float(obj[token])})
    return lesions


def _head_attributes(model, token: torch.Tensor) -> dict[str, tuple[str, float]]:
    """The heads' answers for one token (its head inputs), as prompt-free attributes (location =
    organ + side, its probability the product of the two)."""
    from ...query import location_text
    from .heads import predicted_values

    values = predicted_values(model.heads(token.float()))[0]
    organ, p_organ = values.pop("organ")
    side, p_side = values.pop("side")
    paired = organ in ("lung", "kidney")
    location = location_text(organ, side if paired else None)
    out = {"location": (location, round(p_organ * (p_side if paired else 1.0), 4))}
    out.update({name: (value, round(p, 4)) for name, (value, p) in values.items()})
    return out


def _lesion_type(attributes: dict[str, str]) -> str:
    """Most likely lesion type from the clinical knowledge table [paper step IV]."""
    from ...query import rank_lesion_types

    ranked = rank_lesion_types(attributes, None)  # the organ is read from the location value
    return ranked[0][0] if ranked else "lesion"
