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

    ``size_word`` holds a size adjective ("small", "large"); ``ordinal`` a referring cue
    ("larger", "largest", "second"); ``inferred`` what the knowledge table implies for
    attributes the text left unstated (never mixed into the asserted fields: selection and the
    referring sentence read only the asserted ones). ``evidence`` says how an asserted value was
    read when no vocabulary phrase named it ("implied by 'areas of necrosis'", "similar to 'rough
    irregular serosal surface'"), ``confidence`` gives the similarity of values read by the text
    encoder (absent: read by the rules). ``language`` is the description's language (``en``/``zh``);
    ``side`` may be ``bilateral`` (for the liver: both lobes, no lobe named; ``inferred`` may hold
    it too, by the reporting convention of :func:`.knowledge.infer`).
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
    size_word: str | None = None
    unknown_words: list[str] = field(default_factory=list)
    inferred: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LesionQuery":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ParseOutput:
    """What :func:`TextLesionSegLib.query.parse_text` understood from one text.

    ``queries`` holds one :class:`LesionQuery` per described lesion (empty when nothing was
    described); ``message`` is one human-readable line saying what was understood and what
    was not (contradictions, unknown organs, negated findings, truncation); ``unknown_words``
    every word of the whole text the parser could not place (English words or Chinese character
    runs), in order, each once.
    """

    text: str
    queries: list[LesionQuery] = field(default_factory=list)
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    unknown_words: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: ``{"text", "queries": [...], "message", "unknown_words"}``."""
        return {
            "text": self.text,
            "queries": [q.to_dict() for q in self.queries],
            "message": self.message,
            "unknown_words": list(self.unknown_words),
        }
