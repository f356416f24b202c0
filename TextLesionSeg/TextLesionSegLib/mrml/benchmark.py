"""Latency of the Slicer-side steps on a CT-sized grid (real MRML from slicer-core, no Qt).

``python -m TextLesionSegLib.mrml.benchmark [--shape K J I] [--segments N]`` prints seconds for:
volume node -> engine image, import of a result with probability maps, one live re-threshold
(what the slider does per move), and one "keep lesion under click". With ``--image FILE
[--label FILE] [--text T] [--model M]`` it runs the whole Slicer-side flow on a real file instead. Numbers go to
docs/BENCHMARKS.md (E2 section) with the command that produced them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _volume(scene, shape):
    import vtk
    from vtk.util import numpy_support

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    data = vtk.vtkImageData()
    data.SetDimensions(shape[2], shape[1], shape[0])
    ct = np.full(shape, -1000, np.int16)
    ct[:, shape[1] // 8: -shape[1] // 8, shape[2] // 8: -shape[2] // 8] = 40
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(ct.ravel(), deep=True))
    node.SetAndObserveImageData(data)
    node.SetSpacing(0.8, 0.8, 2.5)
    return node


def run_real(image_path: str, text: str, model: str, label_path: str | None = None) -> None:
    """The Slicer-side flow on a real file: Slicer's reader -> request -> worker (in-process,
    CPU) -> segments; prints stage times and, with a label, the Dice of the first segment."""
    import slicer

    from ..pipeline.io import read_image
    from ..worker.server import run_request_sync
    from .session import discard_run, finish_run, prepare_run

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "input")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(image_path)
    if not storage.ReadData(node):
        raise SystemExit(f"Slicer's reader could not read {image_path}")
    t0 = time.perf_counter()
    request, context = prepare_run(node, text, model, {"device": "cpu"}, keep_probability=True)
    t1 = time.perf_counter()
    message = run_request_sync(request)
    t2 = time.perf_counter()
    if message.get("type") != "result":
        raise SystemExit(f"worker error: {message.get('message')}")
    imported, rows, result = finish_run(context, message["result_path"])
    t3 = time.perf_counter()
    discard_run(context)
    print(f"grid KJI {result.segments[0].mask.shape}; prepare {t1 - t0:.2f} s, worker {t2 - t1:.1f} s, "
          f"import {t3 - t2:.2f} s; {len(rows)} table rows")
    if label_path:
        label = read_image(label_path).array > 0
        mask = result.segments[0].mask > 0
        dice = 2 * (mask & label).sum() / max(1, mask.sum() + label.sum())
        print(f"Dice vs label {dice:.3f} (predicted {int(mask.sum())} voxels, label {int(label.sum())})")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per step."""
    import slicer
    from scipy import ndimage  # noqa: F401 - imported before timing: a warm click, not a first import

    from ..pipeline.result import Result, SegmentResult
    from .correction import lesion_under_point, rethreshold_segment
    from .segmentation import import_result
    from .volumes import volume_to_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(200, 512, 512), metavar=("K", "J", "I"))
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--image", help="run the whole flow on this file instead (e.g. lung2_image.nrrd)")
    parser.add_argument("--label", help="with --image: a label file for the Dice of the first segment")
    parser.add_argument("--text", default="a mass in the left lung")
    parser.add_argument("--model", default="malenia-demo")
    args = parser.parse_args(argv)
    if args.image:
        factory = slicer.vtkSegmentationConverterFactory.GetInstance()
        factory.RegisterConverterRule(slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule())
        run_real(args.image, args.text, args.model, args.label)
        return 0
    shape = tuple(args.shape)
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    factory.RegisterConverterRule(slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule())
    scene = slicer.vtkMRMLScene()
    volume = _volume(scene, shape)

    t0 = time.perf_counter()
    image = volume_to_image(volume)
    t_image = time.perf_counter() - t0

    import tempfile

    from .session import discard_run, prepare_run

    t0 = time.perf_counter()
    _, context = prepare_run(volume, "mass in the liver", "any-model", work_dir=tempfile.mkdtemp())
    t_prepare = time.perf_counter() - t0
    discard_run(context)

    grid = np.ogrid[: shape[0], : shape[1], : shape[2]]
    segments = []
    for n in range(args.segments):
        centre = (shape[0] // 2, shape[1] // 3 + 40 * n, shape[2] // 2)
        distance = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, (2.5, 0.8, 0.8))))
        probability = np.clip(1.0 - distance / 40.0, 0, 1).astype(np.float32)
        segments.append(SegmentResult(name=f"lesion {n}", mask=(probability >= 0.5).astype(np.uint8),
                                      probability=probability))
    result = Result(image=image, segments=segments, model_name="bench", model_version="0")
    t0 = time.perf_counter()
    imported = import_result(result, volume, keep_probability=True)
    t_import = time.perf_counter() - t0

    segment_id = imported.segment_ids[0]
    t0 = time.perf_counter()
    rethreshold_segment(imported.segmentation_node, segment_id, 0.6)
    t_threshold = time.perf_counter() - t0

    centre_ras = image.kji_to_ras(np.array([shape[0] // 2, shape[1] // 3, shape[2] // 2], float))
    t0 = time.perf_counter()
    lesion_under_point(imported.segmentation_node, segment_id, tuple(centre_ras), "keep")
    t_click = time.perf_counter() - t0

    print(f"grid KJI {shape} ({np.prod(shape) / 1e6:.1f} M voxels), {args.segments} segments")
    print(f"volume node -> Image:            {t_image:.3f} s")
    print(f"prepare request (input NRRD):    {t_prepare:.3f} s")
    print(f"import result (+probability):    {t_import:.3f} s")
    print(f"live re-threshold, one segment:  {t_threshold:.3f} s")
    print(f"keep lesion under click:         {t_click:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
