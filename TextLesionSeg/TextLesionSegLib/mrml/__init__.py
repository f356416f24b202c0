"""Glue between the engine and Slicer's MRML scene (the only engine code that imports ``slicer``).

Works with the MRML classes of a running Slicer or of ``slicer-core`` (no Qt, no application):
every function takes the nodes it works on and reaches the scene through ``node.GetScene()``,
never through ``slicer.mrmlScene`` or ``slicer.modules``, so the same code is tested with pytest.

Modules, by concern:

* :mod:`.volumes` — scalar volume node <-> :class:`~TextLesionSegLib.pipeline.geometry.Image`,
  CT plausibility warning, probability volumes.
* :mod:`.terminology` — terminology dicts -> Slicer's ``TerminologyEntry`` string.
* :mod:`.segmentation` — :class:`~TextLesionSegLib.pipeline.result.Result` -> segments.
* :mod:`.segment_voxels` — one segment's voxels read and written without touching another
  (segments may share a labelmap layer), and the digest that tells a user's edit apart.
* :mod:`.correction` — keep/remove the lesion under a click, live re-threshold.
* :mod:`.roi` — restrict a run to a markups ROI and paste the answer back.
* :mod:`.table` — lesion table rows, CSV and a table node.
* :mod:`.environment` — which Python requirements are missing, torch/CUDA status, the
  one-confirmation install decision.
* :mod:`.preview` — the live preview of what the query parser understood.
* :mod:`.session` — one run: volume node -> worker request -> segments and lesion rows.
* :mod:`.benchmark` — latency of these steps on a CT-sized grid (``python -m``).

Nothing here imports torch, monai or transformers at file scope.
"""
