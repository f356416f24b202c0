"""The structured form of one described lesion: what every model is asked for."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Malenia's eight lesion attributes, in the order their phrases are built [paper].
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "location",
    "shape",
    "density",
    "density_variation",
    "enhancement",
    "surface",
    "relation",
    "specific_features",
)


@dataclass
class LesionQuery:
    """One lesion as the user described it; ``None`` where the text asserted nothing.

    Canonical values: shape ``round-like|irregular``; density
    ``hypodense|isodense|hyperdense|mixed``; density_variation ``homogeneous|heterogeneous``;
    surface ``well-defined|ill-defined``; enhancement ``non-contrast|contrast-enhanced``;
    relation ``not closely related|closely related``.
    """

    text: str
    organ: str | None = None
    side: str | None = None
    sub_location: str | None = None
    shape: str | None = None
    density: str | None = None
    density_variation: str | None = None
    surface: str | None = None
    enhancement: str | None = None
    relation: str | None = None
    related_organ: str | None = None
    specific_features: list[str] = field(default_factory=list)
    size_mm: list[float] | None = None
    count: int | str | None = None
    lesion_type: str | None = None
    uncertain: bool = False
    ordinal: str | None = None
    unknown_words: list[str] = field(default_factory=list)
    inferred: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LesionQuery":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})
