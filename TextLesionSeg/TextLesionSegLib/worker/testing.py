"""A tiny real segmenter for the worker's and the registry's tests and the soak benchmark.

It is a true ``torch.nn.Module`` saved as safetensors + config.json like every model here,
but it is not a lesion model: a 3x3x3 mean filter followed by a steep sigmoid around an
intensity ``level`` (so bright blobs on the working grid come out as "lesions"). Its config can
make it slow (``sleep_per_window`` seconds per window, to test cancel; ``started_file`` is
created when the first window runs, so a test can signal a run that is surely mid-way) or make it crash
(``crash_after_windows``: the process exits hard, to test crash reporting) or behave like a
model with a programming error (``bug_in_predict``: raises ``ZeroDivisionError``, to test that
internal errors reach the user as one line plus a log file).

It is *not* in the registry's architecture table: tests add it with an extra registry file
(``$TEXTLESIONSEG_EXTRA_REGISTRY``) holding ``{"architectures": {"tiny-test": "...:TinySegmenter"}}``,
see :func:`write_test_registry`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from ..models.base import InferenceSettings, LesionSegmenter, PreprocessingConfig, ProgressCallback

ARCHITECTURE = "tiny-test"
CLASS_PATH = "TextLesionSegLib.worker.testing:TinySegmenter"
DEFAULT_CONFIG: dict[str, Any] = {
    "channels": 2,
    "level": 0.65,
    "gain": 40.0,
    "roi_size": [16, 16, 16],
    "sleep_per_window": 0.0,
    "started_file": None,
    "crash_after_windows": None,
    "bug_in_predict": False,
}


def build_module(config: dict[str, Any]) -> Any:
    """The network: Conv3d(1, channels, 3) initialised as a mean filter."""
    import torch

    conv = torch.nn.Conv3d(1, int(config["channels"]), 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(1.0 / 27.0)
        conv.bias.zero_()
    return conv


class TinySegmenter(LesionSegmenter):
    """Mean filter + sigmoid threshold; one identical map per query (text is ignored)."""

    name = "tiny"
    version = "0.0.1"
    capabilities = frozenset({"text", "clicks"})

    def __init__(self, config: dict[str, Any], module: Any, device: str = "cpu") -> None:
        self.config = {**DEFAULT_CONFIG, **config}
        self.module = module.to(device).eval()
        self.device = device
        self.preprocessing = PreprocessingConfig(
            spacing=None, hu_window=(-175.0, 250.0), roi_size=tuple(self.config["roi_size"]), crop_foreground=False
        )

    def save_pretrained(self, folder: Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().cpu() for k, v in self.module.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.config, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def from_pretrained(cls, weights_dir: Path, device: str = "cpu") -> "TinySegmenter":
        """Load with ``strict=True`` so weights that do not fit the config fail loudly."""
        from safetensors.torch import load_file

        config = json.loads((Path(weights_dir) / "config.json").read_text(encoding="utf-8"))
        module = build_module({**DEFAULT_CONFIG, **config})
        module.load_state_dict(load_file(str(Path(weights_dir) / "model.safetensors")), strict=True)
        return cls(config, module, device)

    def predict(
        self,
        volume: Any,
        queries: Sequence[Any],
        settings: InferenceSettings,
        progress: ProgressCallback | None = None,
    ) -> Any:
        """The engine's sliding window over the volume; sleeps or crashes per window if configured."""
        import torch

        from ..pipeline.inference import sliding_window_predict

        if self.config.get("bug_in_predict"):
            raise ZeroDivisionError("simulated programming error in a model")
        calls = [0]
        crash_after = self.config.get("crash_after_windows")

        def window(patch: Any) -> Any:
            if crash_after is not None and calls[0] >= int(crash_after):
                os._exit(70)  # simulate a hard crash (segfault, OOM kill) of the process
            calls[0] += 1
            if calls[0] == 1 and self.config.get("started_file"):
                Path(self.config["started_file"]).touch()
            if self.config.get("sleep_per_window"):
                time.sleep(float(self.config["sleep_per_window"]))
            mean = self.module(patch.to(self.device, torch.float32)).mean(dim=1, keepdim=True)
            return torch.sigmoid(float(self.config["gain"]) * (mean - float(self.config["level"])))

        prob = sliding_window_predict(window, volume, self.preprocessing.roi_size, settings, progress, stage="Segmenting")
        return prob[0, 0].unsqueeze(0).repeat(max(len(queries), 1), 1, 1, 1)


    def refine(self, volume: Any, clicks: Sequence[Any], prior: Any = None) -> Any:
        """Clicks: the bright blobs (its text map) under the positive clicks, with the prior when
        there is one, less the blobs under negative clicks; a click model for the worker's tests."""
        import numpy as np
        from scipy.ndimage import label

        from ..core.types import InferenceSettings

        blobs, _ = label(self.predict(volume, [None], InferenceSettings(device="cpu"))[0].numpy() > 0.5)
        keep = np.zeros(blobs.shape, bool) if prior is None else np.asarray(prior, bool).copy()
        for click in clicks:
            piece = blobs == blobs[click.kji] if blobs[click.kji] else np.zeros_like(keep)
            keep = keep | piece if click.positive else keep & ~piece
        return keep.astype(np.float32)


def make_weights(folder: Path, **config: Any) -> Path:
    """Save a fresh tiny model with ``config`` overrides into ``folder``."""
    full = {**DEFAULT_CONFIG, **config}
    return TinySegmenter(full, build_module(full)).save_pretrained(folder)


def write_test_registry(folder: Path, models: dict[str, dict[str, Any]], **entry_fields: Any) -> Path:
    """Weights for each ``name -> config overrides`` plus a registry file naming them.

    Returns the registry path, to pass in ``$TEXTLESIONSEG_EXTRA_REGISTRY`` or to ``Registry``.
    """
    from ..models.registry import sha256_file

    folder = Path(folder)
    entries = []
    for name, config in models.items():
        weights = make_weights(folder / "weights" / name, **config)
        entries.append({
            "name": name, "architecture": ARCHITECTURE, "version": "0.0.1",
            "description": "tiny test segmenter (mean filter + threshold), not a lesion model",
            "license": "Apache-2.0", "card": "",
            "weights": {"path": f"weights/{name}", "sha256": sha256_file(weights / "model.safetensors"),
                        "size": (weights / "model.safetensors").stat().st_size},
            **entry_fields,
        })
    path = folder / "test_registry.json"
    path.write_text(json.dumps({"architectures": {ARCHITECTURE: CLASS_PATH}, "models": entries}, indent=2), encoding="utf-8")
    return path


def write_phantom(path: Path, size: int = 32, lesion_radius_vox: float = 5.0) -> Path:
    """A small CT-like NRRD: water-density body in air with one bright (+150 HU) sphere."""
    import numpy as np
    import SimpleITK as sitk

    k, j, i = np.mgrid[:size, :size, :size].astype(np.float32)
    centre = (size - 1) / 2.0
    array = np.full((size, size, size), -1000, dtype=np.int16)
    body = (j - centre) ** 2 + (i - centre) ** 2 <= (0.45 * size) ** 2
    array[body] = 40
    lesion = (k - centre) ** 2 + (j - centre) ** 2 + (i - centre + size / 8) ** 2 <= lesion_radius_vox**2
    array[lesion] = 150
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 1.5, 2.0))
    image.SetOrigin((-24.0, -30.0, 10.0))
    sitk.WriteImage(image, str(path))
    return Path(path)
