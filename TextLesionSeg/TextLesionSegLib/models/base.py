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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:  # torch is imported lazily: Slicer loads this before installing it
    import torch

    from ..query.types import LesionQuery

#: selection modes (``pipeline.selection``) and the prompt-free mode with a calibrated threshold
THRESHOLD_KEYS = ("network", "measured", "prompt_free")

#: progress(stage, fraction): stage is a short human-readable text, fraction in 0..1 or None.
#: A callback may raise ``errors.CancelledError`` to stop the job.
ProgressCallback = Callable[[str, "float | None"], None]


@dataclass
class PreprocessingConfig:
    """How a model wants its input grid and intensities.

    Attributes:
        spacing: working voxel size along I, J, K in mm; ``None`` keeps the input spacing.
        hu_window: HU values mapped to 0 and 1 (clipped outside).
        roi_size: sliding-window patch size in KJI order (3D models) or (1, rows, cols) for
            slice models.
        crop_foreground: crop to the body before inference (undone afterwards).
    """

    spacing: tuple[float, float, float] | None = (1.5, 1.5, 1.5)
    hu_window: tuple[float, float] = (-175.0, 250.0)
    roi_size: tuple[int, int, int] = (96, 96, 96)
    crop_foreground: bool = True


@dataclass
class InferenceSettings:
    """Run-time knobs a user may change without retraining.

    Types, ranges, defaults and help of every field and ``extra`` key are defined once, in
    :data:`.settings.SETTINGS`; a value outside them is an ``InputError`` naming the setting and
    its range, raised when the settings are built and again by ``pipeline.run`` (the fields stay
    assignable). :meth:`from_mapping` builds settings from a plain dict (Python API, worker).
    """

    device: str = "auto"
    overlap: float = 0.5
    sw_batch_size: int | None = None  # None: automatic (pipeline.inference.sliding_window_batch)
    amp: bool = True
    threshold: float = 0.5
    low_memory: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "InferenceSettings":
        """Check every field and ``extra`` key against the table; normalise in place; return self."""
        from .settings import FIELD_NAMES, SETTINGS, check_extra

        for name in FIELD_NAMES:
            setattr(self, name, SETTINGS[name].check(getattr(self, name)))
        self.extra = check_extra({} if self.extra is None else self.extra)
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "InferenceSettings":
        """Settings from a dict such as ``{"threshold": 0.4, "device": "cpu", "selection": "network"}``.

        Fields and ``extra`` keys may sit side by side (or ``extra`` as a nested dict). Unknown
        keys, wrong types (no coercion: ``"0.5"`` and ``true`` are not numbers), NaN/inf and
        values out of range are an ``InputError`` naming the setting and what it accepts.
        """
        from .settings import split_mapping

        fields_, extra = split_mapping(values)
        return cls(**fields_, extra=extra)

    @classmethod
    def coerce(cls, value: "InferenceSettings | Mapping[str, Any] | None") -> "InferenceSettings":
        """``None`` -> defaults, a mapping -> :meth:`from_mapping`, settings -> validated again (same object)."""
        if value is None:
            return cls()
        if isinstance(value, InferenceSettings):
            return value.validate()
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        from ..errors import InputError
        from .settings import describe

        raise InputError(f"settings must be InferenceSettings or a dict, not {describe(value)}")


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
