"""What a model architecture is, declared once: :class:`ModelSpec`.

Every architecture is a sub-package of ``TextLesionSegLib.models`` whose ``__init__.py`` sets
``SPEC = ModelSpec(...)``; :func:`model_specs` finds them all. The registry (which class loads a
weights folder), the default-model choice, ``textlesionseg train``/``prepare``/``benchmark`` and the
GPU job read these declarations, so a new model is added in its own package and nowhere else
(docs/architecture.md, "Adding a model").

Declarations name modules as strings and import nothing: reading them costs no torch import
(Slicer reads the registry at start-up).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: what a model can do: ``text`` (a description chooses the lesion), ``prompt_free``
#: (``find_lesions`` without words), ``clicks`` (``refine`` from positive and negative points)
CAPABILITIES = frozenset({"text", "prompt_free", "clicks"})


@dataclass(frozen=True)
class ModelSpec:
    """One architecture's declaration.

    Attributes:
        architecture: the name weights folders and registry entries use (``config.json``).
        segmenter: ``"module:Class"`` of its ``LesionSegmenter``; the class's
            ``from_pretrained(weights_dir, device)`` loads a weights folder.
        capabilities: a subset of :data:`CAPABILITIES`; the segmenter class reads it from here.
        preference: rank among the models used when none is named (0 first); ``None``: only
            when no ranked model has weights (baselines, click-only models).
        trainer: module of the trainer protocol (``build_model``, ``build_datasets``,
            ``evaluate_batch``; see ``training.trainer``); ``None``: not trainable here.
        writes_cache: its trainer can write a training cache (``preprocessing`` +
            ``text_features``: ``textlesionseg prepare``).
        benchmark_configs: shipped configs ``textlesionseg benchmark`` times with random weights,
            demo size first, then full size.
    """

    architecture: str
    segmenter: str
    capabilities: "frozenset[str]" = frozenset({"text"})
    preference: "int | None" = None
    trainer: "str | None" = None
    writes_cache: bool = False
    benchmark_configs: "tuple[str, ...]" = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        unknown = self.capabilities - CAPABILITIES
        if unknown or not self.capabilities:
            raise ValueError(f"model {self.architecture!r}: capabilities {sorted(self.capabilities)} must be a "
                             f"non-empty subset of {sorted(CAPABILITIES)}")
        if ":" not in self.segmenter:
            raise ValueError(f"model {self.architecture!r}: segmenter must be 'module:Class', not {self.segmenter!r}")

    def segmenter_class(self) -> type:
        """Import and return the segmenter class (this imports torch)."""
        module, _, name = self.segmenter.partition(":")
        return getattr(importlib.import_module(module), name)


@lru_cache(maxsize=None)
def _discover() -> "tuple[ModelSpec, ...]":
    package = importlib.import_module(__package__)
    specs: dict[str, ModelSpec] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        spec: Any = getattr(importlib.import_module(f"{__package__}.{info.name}"), "SPEC", None)
        if spec is None:
            continue
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"{__package__}.{info.name}.SPEC is not a ModelSpec")
        if spec.architecture in specs:
            raise ValueError(f"architecture {spec.architecture!r} is declared twice")
        specs[spec.architecture] = spec
    return tuple(specs.values())


def model_specs() -> "dict[str, ModelSpec]":
    """Every declared architecture: name -> spec, sorted by package name."""
    return {spec.architecture: spec for spec in _discover()}


def model_spec(architecture: str) -> ModelSpec:
    """The declaration of ``architecture``; ``KeyError`` naming the known ones otherwise."""
    specs = model_specs()
    if architecture not in specs:
        raise KeyError(f"architecture {architecture!r} is not declared (known: {', '.join(sorted(specs))})")
    return specs[architecture]


def trainable() -> "dict[str, str]":
    """Architecture -> trainer module, for every declared architecture that trains."""
    return {name: spec.trainer for name, spec in model_specs().items() if spec.trainer}


def default_preference(prompt_free: bool = False) -> "tuple[str, ...]":
    """Architectures tried first when no model is named, best first: the ranked ones by
    ``preference``; with ``prompt_free``, those that can find lesions without words lead."""
    ranked = sorted((s for s in model_specs().values() if s.preference is not None), key=lambda s: s.preference)
    order = tuple(s.architecture for s in ranked)
    if prompt_free:
        order = tuple(dict.fromkeys([a for a in order if "prompt_free" in model_specs()[a].capabilities] + list(order)))
    return order
