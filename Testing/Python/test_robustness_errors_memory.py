"""Internal errors and allocation failures (issue 18), one classifier (``errors.classify``) for the
command line and the worker.

An internal error is one line naming the log that holds the traceback, however many lines its
message has. Any allocation failure is exit 4 with the run's memory estimate when there is one:
numpy's ``_ArrayMemoryError`` (a ``MemoryError``), torch's CPU allocator (a ``RuntimeError``
"DefaultCPUAllocator: can't allocate memory"), SimpleITK/ITK ("Failed to allocate memory for
image."), CUDA ("CUDA out of memory", ``torch.OutOfMemoryError``; simulated: no GPU here) and
cuBLAS/cuDNN "..._STATUS_ALLOC_FAILED". The numpy, torch and SimpleITK failures are real
allocations of 100000^3 voxels, which fail at once.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from TextLesionSegLib.cli import main
from TextLesionSegLib.errors import (CLI_MEMORY_HINT, WORKER_MEMORY_HINT, InputError, InsufficientMemoryError,
                                     ModelError, classify)
from TextLesionSegLib.worker import testing as tiny

TEXT = "round hyperdense mass in the right lung"
HUGE = (100_000, 100_000, 100_000)


# ---- the real texts ------------------------------------------------------------------------------
_PRODUCE = r"""
import json, sys
out = {}
def grab(key, make):
    try:
        make()
    except BaseException as exc:
        out[key] = {"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}
import numpy as np, SimpleITK as sitk, torch
grab("numpy", lambda: np.zeros(HUGE, np.float32))
grab("torch_cpu", lambda: torch.empty(HUGE))
grab("sitk_image", lambda: sitk.Image(list(HUGE), sitk.sitkFloat32))
grab("sitk_resample", lambda: sitk.Resample(sitk.Image([8, 8, 8], sitk.sitkFloat32), list(HUGE), sitk.Transform(),
                                            sitk.sitkLinear, (0, 0, 0), (1, 1, 1)))
print(json.dumps(out))
""".replace("HUGE", repr(HUGE))


@pytest.fixture(scope="module")
def real_texts() -> dict[str, dict]:
    """What each library raises when an allocation fails, produced in a separate process."""
    proc = subprocess.run([sys.executable, "-c", _PRODUCE], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_real_allocation_failures_are_what_the_classifier_expects(real_texts):
    """If a library changes its text, this says so first."""
    assert set(real_texts) == {"numpy", "torch_cpu", "sitk_image", "sitk_resample"}, real_texts
    assert "MemoryError" in real_texts["numpy"]["mro"] and "Unable to allocate" in real_texts["numpy"]["message"]
    assert real_texts["torch_cpu"]["type"] == "RuntimeError"
    assert "DefaultCPUAllocator: can't allocate memory" in real_texts["torch_cpu"]["message"]
    for key in ("sitk_image", "sitk_resample"):
        assert real_texts[key]["type"] == "RuntimeError" and "\n" in real_texts[key]["message"]
        assert "Failed to allocate memory for image." in real_texts[key]["message"]


@pytest.mark.parametrize("key,shown", [("torch_cpu", "DefaultCPUAllocator: can't allocate memory"),
                                       ("sitk_image", "Failed to allocate memory for image."),
                                       ("sitk_resample", "Failed to allocate memory for image.")])
def test_each_real_allocation_text_is_exit_4_one_line(real_texts, key, shown):
    exc = RuntimeError(real_texts[key]["message"])
    for hint in (CLI_MEMORY_HINT, WORKER_MEMORY_HINT):
        failure = classify(exc, hint=hint)
        assert (failure.kind, failure.exit_code) == ("memory", 4), failure
        assert failure.message.startswith("not enough memory (") and shown in failure.message and hint in failure.message
        assert "\n" not in failure.message and "itkImportImageContainer" not in failure.message  # the telling line
        assert "[enforce fail" not in failure.message


def _real(kind: str) -> BaseException:
    """A real exception object of each kind, raised here (numpy, torch, SimpleITK allocate 100000^3)."""
    try:
        if kind == "numpy":
            import numpy as np

            np.zeros(HUGE, np.float32)
        elif kind == "torch_cpu":
            import torch

            torch.empty(HUGE)
        elif kind == "sitk":
            import SimpleITK as sitk

            sitk.Image(list(HUGE), sitk.sitkFloat32)
        elif kind == "cuda_oom":  # simulated (no GPU here): torch's own type with the text it carries
            import torch

            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which "
                "1.25 GiB is free. Including non-PyTorch memory, this process has 77.89 GiB memory in use. Of the "
                "allocated memory 76.20 GiB is allocated by PyTorch, and 1.10 GiB is reserved by PyTorch but "
                "unallocated. If reserved but unallocated memory is large try setting "
                "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
                "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")
        elif kind == "cuda_error":  # simulated: the older / asynchronous form, a plain RuntimeError
            raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported at "
                               "some other API call, so the stacktrace below might be incorrect.\nFor debugging "
                               "consider passing CUDA_LAUNCH_BLOCKING=1")
        elif kind == "cublas":  # simulated
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
        elif kind == "bare":
            raise MemoryError()
        elif kind == "enomem":
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError(f"{kind}: nothing was raised")


KINDS = {"numpy": "Unable to allocate 3.55 PiB", "torch_cpu": "DefaultCPUAllocator: can't allocate memory",
         "sitk": "Failed to allocate memory for image.", "cuda_oom": "CUDA out of memory. Tried to allocate 20.00 GiB",
         "cuda_error": "CUDA error: out of memory", "cublas": "CUBLAS_STATUS_ALLOC_FAILED", "bare": "MemoryError",
         "enomem": "Cannot allocate memory"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_allocation_failure_is_exit_4(kind):
    exc = _real(kind)
    failure = classify(exc)
    assert (failure.kind, failure.exit_code) == ("memory", 4), failure
    assert KINDS[kind] in failure.message and "\n" not in failure.message, failure
    assert len(failure.message) < 300 and "expandable_segments" not in failure.message  # CUDA's advice cut
    wrapped = InputError("cannot read the image")  # one of our errors around a library's allocation failure
    wrapped.__cause__ = exc
    assert classify(wrapped).exit_code == 4


@pytest.mark.parametrize("exc,code", [
    (RuntimeError("CUDA error: device-side assert triggered"), 1),
    (ValueError("the buffer is out of memory range"), 1),  # only allocation failures, not every mention
    (InputError("the text says 'out of memory'"), 2),
    (ModelError("weights are truncated"), 3),
    (InsufficientMemoryError("this run needs about 9.0 GiB of memory but 2.0 GiB is available"), 4),
    (KeyboardInterrupt(), 130),
])
def test_what_is_not_an_allocation_failure_keeps_its_code(exc, code):
    failure = classify(exc)
    assert failure.exit_code == code, failure
    assert "\n" not in failure.message


def test_an_internal_error_shows_the_first_line_only():
    failure = classify(RuntimeError("\n  first line of the bug\nsecond line\n third"))
    assert (failure.kind, failure.exit_code) == ("internal", 1)
    assert failure.message == "internal error: RuntimeError: first line of the bug"
    assert classify(ZeroDivisionError()).message == "internal error: ZeroDivisionError"


# ---- through the command line and the worker ----------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("memory")
    registry = tiny.write_test_registry(folder / "site", {"tiny-oom": {}})
    return {"registry": registry, "ct": tiny.write_phantom(folder / "ct.nrrd", size=24), "folder": folder}


@pytest.fixture()
def env(site, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXTLESIONSEG_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


def _fail_in_predict(monkeypatch, kind: str) -> None:
    def predict(self, volume, queries, settings, progress=None):
        raise _real(kind)

    monkeypatch.setattr(tiny.TinySegmenter, "predict", predict)


def _cli(site, out: Path, capsys) -> tuple[int, str]:
    out.mkdir(exist_ok=True)
    rc = main(["segment", str(site["ct"]), "--text", TEXT, "--model", "tiny-oom", "--device", "cpu", "--quiet",
               "--output", str(out / "o.seg.nrrd"), "--report", str(out / "o.json")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert list(out.iterdir()) == []
    return rc, lines[0]


@pytest.mark.parametrize("kind", ["numpy", "torch_cpu", "sitk", "cuda_oom", "cuda_error"])
def test_an_allocation_failure_mid_run_is_exit_4_with_the_estimate_cli_and_worker(site, env, capsys, monkeypatch,
                                                                                 kind):
    _fail_in_predict(monkeypatch, kind)
    rc, line = _cli(site, env / "out", capsys)
    assert rc == 4, line
    assert line.startswith("textlesionseg: error: not enough memory (") and KINDS[kind] in line, line
    assert "GiB (estimate)" in line and "GiB is available now" in line and "--low-memory" in line, line
    assert not (env / "logs").exists()  # not an internal error: no log

    from TextLesionSegLib.worker.server import run_request_sync

    message = run_request_sync({"type": "segment", "image_path": str(site["ct"]), "texts": [TEXT], "model": "tiny-oom",
                                "settings": {"device": "cpu"}, "output_dir": str(env / "worker-out")})
    assert message["type"] == "error" and message["exit_code"] == 4, message
    assert KINDS[kind] in message["message"] and "GiB (estimate)" in message["message"], message
    assert "low-memory mode" in message["message"] and "\n" not in message["message"]
    assert not (env / "worker-out").exists() or list((env / "worker-out").iterdir()) == []


def test_an_allocation_failure_before_there_is_an_image_has_no_estimate(site, env, capsys, monkeypatch):
    from TextLesionSegLib.pipeline import io

    def read_image(*args, **kwargs):
        raise _real("sitk")

    monkeypatch.setattr(io, "read_image", read_image)
    rc, line = _cli(site, env / "out", capsys)
    assert rc == 4 and "Failed to allocate memory for image." in line and "estimate" not in line, line


def test_an_internal_error_with_a_multi_line_message_is_one_line_naming_the_log(site, env, capsys, monkeypatch):
    def predict(self, volume, queries, settings, progress=None):
        raise RuntimeError("first line of the bug\nsecond line\n\tthird line")

    monkeypatch.setattr(tiny.TinySegmenter, "predict", predict)
    rc, line = _cli(site, env / "out", capsys)
    logs = list((env / "logs").iterdir())
    assert rc == 1 and len(logs) == 1, line
    assert line == f"textlesionseg: internal error: RuntimeError: first line of the bug (details in {logs[0]})"
    text = logs[0].read_text(encoding="utf-8")
    assert "Traceback" in text and "second line" in text and "third line" in text  # all of it in the log

    from TextLesionSegLib.worker.server import run_request_sync

    message = run_request_sync({"type": "segment", "image_path": str(site["ct"]), "texts": [TEXT], "model": "tiny-oom",
                                "settings": {"device": "cpu"}, "output_dir": str(env / "worker-out")})
    assert message["type"] == "error" and message["exit_code"] == 1
    assert message["message"] == "internal error: RuntimeError: first line of the bug (traceback in the worker log)"


def test_an_unwritable_log_folder_never_turns_the_report_into_a_traceback(site, env, capsys, monkeypatch):
    import tempfile

    def predict(self, volume, queries, settings, progress=None):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(tiny.TinySegmenter, "predict", predict)
    blocker = env / "not-a-folder"
    blocker.write_text("a file where the log folder should be", encoding="utf-8")
    monkeypatch.setenv("TEXTLESIONSEG_LOG_DIR", str(blocker / "logs"))
    temp = env / "temp"
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(temp))
    rc, line = _cli(site, env / "out", capsys)  # falls back to the temp folder
    logs = list(temp.iterdir())
    assert rc == 1 and len(logs) == 1 and f"(details in {logs[0]})" in line, line
    assert "simulated bug" in logs[0].read_text(encoding="utf-8")
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(blocker / "temp"))
    rc, line = _cli(site, env / "out2", capsys)  # nowhere to write: said in the same one line
    assert rc == 1 and "internal error: ZeroDivisionError: simulated bug (no log could be written: " in line, line
