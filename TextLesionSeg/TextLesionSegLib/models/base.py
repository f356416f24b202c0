"""The seam between the pipeline and the models.

The pipeline reads the image, moves it onto the model's working grid (see
:class:`PreprocessingConfig`), hands it to :meth:`LesionSegmenter.predict` with the parsed
queries, and maps the returned probabilities back onto the input grid. It knows nothing of
mask tokens, attribute alignment or SVLA; a model knows nothing of files or Slicer.

Working-grid conventions (owned by ``pipeline.preprocess``): the volume is reoriented so its
direction is closest to identity in LPS (i -> patient left, j -> posterior, k -> superior),
resampled to ``spacing``, HU-windowed and scaled to 0..1, and passed as a float tensor of shape
``(1, 1, K, J, I)`` (array order KJI, see ``pipeline.geometry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Sequence

from ..core.types import (  # noqa: F401 - the seam's types, defined below pipeline and models
    THRESHOLD_KEYS,
    InferenceSettings,
    PreprocessingConfig,
    ProgressCallback,
)

if TYPE_CHECKING:  # torch is imported lazily: Slicer loads this before installing it
    from pathlib import Path

    import torch

    from ..query.types import LesionQuery

class LesionSegmenter(ABC):
    """A loaded model that turns a preprocessed volume and queries into probability maps.

    The pipeline does not use the maps as they are: it cuts them into 3D candidates, measures
    them and chooses the one each description names (``pipeline.answer``); a model only says
    what it sees for the words (:meth:`candidate_maps`) and how sure it is.
    """

    #: registry name, e.g. ``malenia-demo``
    name: str = ""
    #: what the model can do, read by the pipeline, CLI and worker instead of its architecture's
    #: name: ``text`` (a description chooses the lesion), ``prompt_free`` (:meth:`find_lesions`),
    #: ``clicks`` (:meth:`refine` from positive and negative points)
    capabilities: frozenset[str] = frozenset({"text"})
    version: str = "0"
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    #: calibrated "not found" thresholds per selection mode (``pipeline.selection``): a
    #: description whose best candidate scores below gets no segment; 0 = always answer
    min_scores: dict[str, float] = {}
    #: besides the best candidate, keep those scoring at least this share of it (1: the best only)
    keep_ratio: float = 1.0
    #: weight of candidates from the model's text-free lesion map in the measured selection
    #: (``pipeline.selection.base_score``); None: the selection's default
    lesion_prior: float | None = None

    @classmethod
    def from_pretrained(cls, weights_dir: "str | Path", device: str = "cpu") -> "LesionSegmenter":
        """A ready segmenter on ``device`` from a weights folder (``model.safetensors`` +
        ``config.json``, see ``models.weights_io``): how the registry loads every declared model
        (``models.spec.ModelSpec.segmenter``). Models built in code only (baselines) raise ``ModelError``."""
        from ..errors import ModelError

        raise ModelError(f"{cls.__name__} has no weights to load from {weights_dir}")

    def read_min_scores(self, extra: dict[str, Any]) -> None:
        """Take the calibrated thresholds a weights folder's ``config.json`` stores in
        ``extra["selection"]`` (``evaluation.referring --write-thresholds``), and the weight of
        text-free candidates chosen on validation data (``lesion_prior``), when there is one."""
        selection = dict(extra.get("selection") or {})
        self.min_scores = {k: float(v) for k, v in selection.items() if k in THRESHOLD_KEYS}
        prior = selection.get("lesion_prior")
        self.lesion_prior = None if prior is None else float(prior)

    def min_score(self, mode: str) -> float:
        """The calibrated "not found" threshold of selection ``mode`` (0 when uncalibrated)."""
        return float(self.min_scores.get(mode, 0.0))

    def candidate_maps(
        self,
        volume: "torch.Tensor",
        queries: Sequence["LesionQuery"],
        settings: InferenceSettings,
        progress: ProgressCallback | None = None,
    ) -> "tuple[torch.Tensor, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]":
        """``(probability, score)``, each ``(Q, K, J, I)``: every lesion the network sees for each
        description, and the probability times its own confidence that a voxel belongs to *the
        described* lesion (``None``: the probability is all it knows). A model may add a third
        element, ``(K, J, I)``: every lesion it sees *whatever the words* (a text-free lesion map),
        from which the ``measured`` selection also draws candidates (``pipeline.answer``).
        Default: :meth:`predict`, no score, no lesion map."""
        return self.predict(volume, queries, settings, progress), None

    @abstractmethod
    def predict(
        self,
        volume: "torch.Tensor",
        queries: Sequence["LesionQuery"],
        settings: InferenceSettings,
        progress: ProgressCallback | None = None,
    ) -> "torch.Tensor":
        """Probability maps, one per query: tensor ``(len(queries), K, J, I)`` in 0..1 on CPU.

        ``volume`` is ``(1, 1, K, J, I)`` on the working grid, already scaled to 0..1.
        """

    def refine(self, volume: "torch.Tensor", clicks: Sequence[Any], prior: Any = None) -> Any:
        """Click mode: probability ``(K, J, I)`` (numpy, working grid) of the one lesion the clicks
        (``training.clicks.Click`` on the working grid) mark, corrected from ``prior`` (the current
        mask on the working grid, or None). Models without ``clicks`` raise ``ModelError``."""
        from ..errors import ModelError

        raise ModelError(f"model '{self.name}' cannot take clicks; use a click model (e.g. interactive-demo)")

    def find_lesions(
        self,
        volume: "torch.Tensor",
        settings: InferenceSettings,
        progress: ProgressCallback | None = None,
    ) -> list[dict[str, Any]]:
        """Prompt-free mode: every lesion found, each ``{"probability": (K, J, I) tensor,
        "attributes": {name: (value, similarity)}, "lesion_type": str, "score": float}``.

        Models without a prompt-free mode raise ``ModelError``.
        """
        from ..errors import ModelError

        raise ModelError(f"model '{self.name}' has no prompt-free mode; give --text")
