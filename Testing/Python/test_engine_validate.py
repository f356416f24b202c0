"""Input checks: CT plausibility, NaN/Inf, constant, spacing, direction, voxel types, small volumes,
memory estimate; and the CUDA out-of-memory fallback of the sliding window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test_engine_helpers import DIRECTIONS, add_ellipsoid, grid_image
from TextLesionSegLib.errors import InputError, InsufficientMemoryError
from TextLesionSegLib.models.base import InferenceSettings, PreprocessingConfig
from TextLesionSegLib.pipeline import inference
from TextLesionSegLib.pipeline.geometry import Image
from TextLesionSegLib.pipeline.io import read_image
from TextLesionSegLib.pipeline.preprocess import to_working_grid
from TextLesionSegLib.pipeline.validate import check_memory, ct_verdict, estimate_memory_bytes, validate_image

CFG = PreprocessingConfig(spacing=(1.5, 1.5, 1.5), roi_size=(16, 16, 16))


def _ct(dtype=np.float32, direction=np.eye(3), spacing=(1.0, 1.0, 2.0)):
    img = grid_image((12, 30, 30), spacing, direction, (0, 0, 0), fill=-1000.0, dtype=dtype)
    add_ellipsoid(img, (0, 0, 0), (12, 12, 30), 40.0)
    return img


def test_real_ct_passes(ctchest_path):
    img = read_image(ctchest_path)
    assert ct_verdict(img).looks_like_ct
    warnings = validate_image(img, CFG)
    assert not any("CT" in w for w in warnings)


def test_mr_refused_unless_allowed(shared_data):
    img = read_image(shared_data / "brain1_image.nrrd")
    with pytest.raises(InputError, match="models were trained on CT.*--allow-non-ct"):
        validate_image(img, CFG)
    warnings = validate_image(img, CFG, allow_non_ct=True)
    assert any("models were trained on CT" in w for w in warnings)


def test_modality_tag_wins():
    img = _ct()
    img.metadata["modality"] = "MR"
    assert not ct_verdict(img).looks_like_ct and "MR" in ct_verdict(img).reason


def test_nan_inf_and_constant():
    img = _ct()
    img.array[0, 0, :3] = [np.nan, np.inf, -np.inf]
    assert any("3 NaN/Inf voxels" in w for w in validate_image(img, CFG))
    tensor, _ = to_working_grid(img, CFG)  # replaced, not propagated
    assert torch.isfinite(tensor).all()
    img.array[:] = np.nan
    with pytest.raises(InputError, match="NaN"):
        validate_image(img, CFG)
    with pytest.raises(InputError, match="constant"):
        validate_image(grid_image((5, 5, 5), (1, 1, 1), np.eye(3), (0, 0, 0), fill=-1000.0), CFG)


@pytest.mark.parametrize("spacing", [(1.0, 0.0, 1.0), (1.0, -1.0, 1.0), (np.nan, 1.0, 1.0)])
def test_bad_spacing(spacing):
    img = _ct()
    img.spacing = spacing
    with pytest.raises(InputError, match="spacing"):
        validate_image(img, CFG)


def test_thick_slices_warn():
    assert any("exceeds 10 mm" in w for w in validate_image(_ct(spacing=(1.0, 1.0, 20.0)), CFG))


def test_non_orthonormal_direction():
    img = _ct(direction=np.array([[1.0, 0.3, 0], [0, 1.0, 0], [0, 0, 1.0]]))
    with pytest.raises(InputError, match="not orthonormal"):
        validate_image(img, CFG)
    assert validate_image(_ct(direction=DIRECTIONS["oblique"]), CFG) is not None  # oblique rotation is fine


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.float64, np.int16])
def test_voxel_types(dtype):
    img = _ct(dtype=np.float32)
    if dtype in (np.int8, np.uint16):
        # not HU-capable types: int8 cannot hold -1000, uint16 has no negatives (raw scanner values)
        arr = np.clip(img.array / 10, -128, 127) if dtype == np.int8 else img.array + 1024
        img = img.with_array(arr.astype(dtype))
        with pytest.raises(InputError, match="does not look like CT"):
            validate_image(img, CFG)
        assert validate_image(img, CFG, allow_non_ct=True)
    else:
        img = img.with_array(img.array.astype(dtype))
        validate_image(img, CFG)
    tensor, _ = to_working_grid(img, CFG)
    assert tensor.dtype == torch.float32


def test_small_volume_is_padded():
    img = _ct()
    cfg = PreprocessingConfig(spacing=(1.5, 1.5, 1.5), roi_size=(96, 96, 96))
    assert any("smaller than a patch" in w for w in validate_image(img, cfg))
    tensor, grid = to_working_grid(img, cfg)
    assert tuple(tensor.shape[2:]) == (96, 96, 96)


def test_memory_estimate_refuses_huge_volume():
    huge = Image(array=np.broadcast_to(np.zeros((), np.int16), (4000, 2048, 2048)), spacing=(0.3, 0.3, 0.3))
    need = estimate_memory_bytes(huge, PreprocessingConfig(), n_queries=3)
    assert need > 100 * 2**30
    with pytest.raises(InsufficientMemoryError, match=r"needs about \d+\.\d GiB.*--low-memory"):
        check_memory(huge, PreprocessingConfig(), n_queries=3)
    assert estimate_memory_bytes(huge, PreprocessingConfig(), 3, low_memory=True) < need
    assert "memory estimate" in check_memory(_ct(), CFG, n_queries=1)


def test_cuda_oom_falls_back_to_smaller_batch_then_cpu(monkeypatch):
    """Simulated CUDA OOM (no GPU needed): batch 4 -> 2 -> 1 -> CPU, each step noted."""
    calls = []

    def fake_run(fn, volume, roi, overlap, sw_batch, device, amp, progress, stage):
        calls.append((device.type, sw_batch))
        if device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return volume * 2

    monkeypatch.setattr(inference, "_run_once", fake_run)
    monkeypatch.setattr(inference, "resolve_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    moved = []
    notes: list[str] = []
    vol = torch.ones(1, 1, 8, 8, 8)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        out = inference.sliding_window_predict(lambda x: x, vol, (8, 8, 8), InferenceSettings(device="cuda", sw_batch_size=4),
                                               notes=notes, fn_to_device=moved.append)
    assert calls == [("cuda", 4), ("cuda", 2), ("cuda", 1), ("cpu", 1)]
    assert len(notes) == 3 and "CPU" in notes[-1] and moved == [torch.device("cpu")]
    torch.testing.assert_close(out, vol * 2)


def test_other_errors_are_not_swallowed(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda name: torch.device("cuda", 0))

    def fake_run(*args):
        raise ValueError("shape mismatch")

    monkeypatch.setattr(inference, "_run_once", fake_run)
    with pytest.raises(ValueError, match="shape mismatch"):
        inference.sliding_window_predict(lambda x: x, torch.ones(1, 1, 4, 4, 4), (4, 4, 4), InferenceSettings())


def test_sliding_window_batch_is_automatic_per_device_unless_set():
    torch = pytest.importorskip("torch")
    from TextLesionSegLib.pipeline.inference import sliding_window_batch

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert sliding_window_batch(InferenceSettings(), cpu) == 4 and sliding_window_batch(InferenceSettings(), cuda) == 1
    assert sliding_window_batch(InferenceSettings(sw_batch_size=2), cpu) == 2
    assert sliding_window_batch(InferenceSettings(sw_batch_size=8, low_memory=True), cpu) == 1
