"""Types the pipeline and the models share, below both: run-time settings, the working-grid
preprocessing a model asks for, calibrated-threshold keys and the progress callback.

Standard library only at import (the settings table, :mod:`.settings`, is read when settings are
checked): Slicer loads this before torch is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

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
