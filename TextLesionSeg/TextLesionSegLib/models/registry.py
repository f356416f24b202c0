"""Which trained models exist, where their weights are, and how to load them safely.

``registry.json`` (next to this file) lists one entry per model::

    {"name": "malenia-demo", "architecture": "malenia", "version": "0.1.0",
     "description": "one line", "license": "Apache-2.0", "card": "docs/models/malenia.md",
     "min_engine_version": "0.1.0",                       # optional
     "weights": {"path": "weights/malenia-demo",          # shipped folder, relative to the JSON
                 "sha256": "<of model.safetensors>", "size": 123456,
                 "config_sha256": "<of config.json>"}}    # optional

or, for weights fetched on first use, ``"weights": {"url": "https://.../model.safetensors",
"sha256": ..., "size": ..., "config": {...}}`` (the config inline, or ``"config_url"``).
Downloads go to a per-user cache (``$TEXTLESIONSEG_CACHE``, else ``~/.cache/textlesionseg/models``),
never into the install folder. Print an entry's hash and size with
``textlesionseg models --hash WEIGHTS_DIR``. The cache folder may be shared with other programs
(``$TEXTLESIONSEG_CACHE`` could name ``~/Downloads``): every folder this package creates in it
holds a marker file (:data:`CACHE_MARKER`), and :meth:`Registry.clear_cache` deletes only
folders with one. Model names and versions must be plain names (no path separators, no ``..``).

Only safetensors files are accepted: a pickled checkpoint can run arbitrary code when loaded.
Extra registry files (a site's own models, or the test models of the worker's tests) are named
in ``$TEXTLESIONSEG_EXTRA_REGISTRY`` (``os.pathsep``-separated); such a file may add an
``"architectures"`` table of its own; the package's architectures come from their declarations
(``models.spec``). Where weights are, downloads, imports and the cache are ``registry_store``'s
(re-exported here). This module does not import torch at file scope.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from ..errors import ModelError
from .registry_store import (  # noqa: F401 - re-exported: part of this module's API
    CACHE_MARKER,
    CacheCleared,
    WeightsStatus,
    WeightsStore,
    is_marked_cache_folder,
    make_cache_folder,
    mark_cache_folder,
    plain_name,
)
from .registry_weights import (  # noqa: F401 - re-exported: part of this module's API
    CONFIG_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    Progress,
    check_safetensors_file,
    default_cache_dir,
    fetch,
    pickle_message,
    remove_stale_parts,
    sha256_file,
)
from .spec import default_preference, model_specs

#: architecture -> "module:Class" whose classmethod ``from_pretrained(weights_dir, device)`` loads it,
#: from the architectures' declarations (``models.spec``)
ARCHITECTURES: dict[str, str] = {name: spec.segmenter for name, spec in model_specs().items()}

REGISTRY_FILE = Path(__file__).with_name("registry.json")


@dataclass
class ModelEntry:
    """One registered model, as read from a registry file."""

    name: str
    architecture: str
    version: str
    description: str = ""
    license: str = "unknown"
    card: str = ""
    weights: dict[str, Any] = field(default_factory=dict)
    min_engine_version: str | None = None
    source: Path = REGISTRY_FILE  # the registry file the entry came from

    @property
    def size(self) -> int | None:
        """Size of ``model.safetensors`` in bytes, as registered."""
        return self.weights.get("size")


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"0.10.2rc1"`` -> ``(0, 10, 2)``: enough to compare release versions."""
    import re

    match = re.match(r"\d+(\.\d+)*", str(text).strip())
    return tuple(int(p) for p in match.group(0).split(".")) if match else (0,)


class Registry(WeightsStore):
    """Model entries from one or more registry files, plus the architecture table.

    Args:
        registry_files: JSON files to read, in order (later entries may not reuse a name).
        architectures: extra ``architecture -> "module:Class"`` rows (tests, site models).
        cache_dir: where downloads go (default :func:`default_cache_dir`).
    """

    def __init__(
        self,
        registry_files: Iterable[Path] = (REGISTRY_FILE,),
        architectures: dict[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.architectures = dict(ARCHITECTURES)
        self.entries: dict[str, ModelEntry] = {}
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256
        for path in registry_files:
            self._read(Path(path))
        self.architectures.update(architectures or {})

    def _read(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"model registry {path} is unreadable ({exc}); reinstall or fix the file") from exc
        self.architectures.update(data.get("architectures", {}))
        for raw in data.get("models", []):
            known = set(ModelEntry.__dataclass_fields__) - {"source"}
            entry = ModelEntry(**{k: v for k, v in raw.items() if k in known}, source=path)
            for label, value in (("name", entry.name), ("version", str(entry.version))):
                if not plain_name(value):
                    raise ModelError(
                        f"model registry {path}: {label} {value!r} is not a plain name (no '/', '\\', ':', '..' "
                        "or control characters); fix the file"
                    )
            if entry.name in self.entries:
                raise ModelError(f"model '{entry.name}' is registered twice ({self.entries[entry.name].source}, {path})")
            self.entries[entry.name] = entry

    # ---- look-up ------------------------------------------------------------------------
    def list_models(self) -> list[ModelEntry]:
        """Every registered model, in registry order."""
        return list(self.entries.values())

    def get_entry(self, name: str) -> ModelEntry:
        """The entry called ``name``; an unknown name lists the known ones."""
        if name not in self.entries:
            known = ", ".join(self.entries) or "none: no trained model is registered yet"
            raise ModelError(f"unknown model '{name}' (known models: {known}); see 'textlesionseg models'")
        return self.entries[name]

    def check_compatible(self, entry: ModelEntry) -> None:
        """Refuse entries this engine cannot run (too old an engine, unknown architecture)."""
        if entry.min_engine_version and _version_tuple(__version__) < _version_tuple(entry.min_engine_version):
            raise ModelError(
                f"model '{entry.name}' needs TextLesionSeg >= {entry.min_engine_version} (this is {__version__}); "
                "update the extension (Extension Manager) or 'pip install -U textlesionseg'"
            )
        if entry.architecture not in self.architectures:
            raise ModelError(
                f"model '{entry.name}' uses architecture '{entry.architecture}', unknown to TextLesionSeg {__version__} "
                f"(known: {', '.join(sorted(self.architectures))}); update the extension"
            )

    # ---- loading --------------------------------------------------------------------------
    def segmenter_class(self, architecture: str) -> type:
        """Import the class registered for ``architecture``."""
        path = self.architectures.get(architecture)
        if path is None:
            raise ModelError(f"unknown architecture '{architecture}' (known: {', '.join(sorted(self.architectures))})")
        module_name, _, class_name = path.partition(":")
        try:
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ModelError(f"architecture '{architecture}' ({path}) is not available in this install: {exc}") from exc

    def load_segmenter(self, name: str, device: str = "cpu", progress: Progress | None = None) -> Any:
        """Verified weights -> a ready :class:`~.base.LesionSegmenter` on ``device``."""
        entry = self.get_entry(name)
        self.check_compatible(entry)
        cls = self.segmenter_class(entry.architecture)
        weights_dir = self.ensure_weights(name, progress)
        if progress:
            progress(f"Loading model {name}", None)
        try:
            segmenter = cls.from_pretrained(weights_dir, resolve_device(device))
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure becomes one actionable line
            raise ModelError(_load_failure_message(entry, weights_dir, exc)) from exc
        segmenter.name = entry.name
        if getattr(segmenter, "version", "0") in ("", "0", None):
            segmenter.version = entry.version
        return segmenter

    def model_card(self, name: str) -> dict[str, Any]:
        """Name, version, licence, one-line description, and the card's path (and text) if found."""
        entry = self.get_entry(name)
        card_path = None
        if entry.card:
            for base in (entry.source.parent, *entry.source.parents):
                if (base / entry.card).is_file():
                    card_path = (base / entry.card).resolve()
                    break
        return {
            "name": entry.name, "version": entry.version, "architecture": entry.architecture,
            "license": entry.license, "description": entry.description, "card": entry.card,
            "card_path": str(card_path) if card_path else None,
            "text": card_path.read_text(encoding="utf-8") if card_path else None,
        }


def _load_failure_message(entry: ModelEntry, weights_dir: Path, exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "state_dict" in str(exc) or "size mismatch" in str(exc) or "Missing key" in str(exc) or "Unexpected key" in str(exc):
        return (
            f"weights of '{entry.name}' do not match its config.json ({text}); the weights folder {weights_dir} mixes "
            "files from different models: reinstall or re-download them"
        )
    return f"cannot load model '{entry.name}' from {weights_dir}: {type(exc).__name__}: {text}"


def resolve_device(device: str | None) -> str:
    """``auto`` -> ``cuda:0`` when torch sees a GPU, else ``cpu``; an unusable device is an InputError.

    Delegates to the engine's ``pipeline.inference.resolve_device`` so every entry point agrees.
    """
    from ..pipeline.inference import resolve_device as engine_resolve

    return str(engine_resolve(str(device) if device is not None else None))


# ---- module-level API: the default registry (package file + $TEXTLESIONSEG_EXTRA_REGISTRY) ----
def extra_registry_files() -> list[Path]:
    """Registry files named in ``$TEXTLESIONSEG_EXTRA_REGISTRY``."""
    raw = os.environ.get("TEXTLESIONSEG_EXTRA_REGISTRY", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def default_registry() -> Registry:
    """A registry of the package's models plus any extra files from the environment."""
    return Registry([REGISTRY_FILE, *extra_registry_files()])


def list_models() -> list[ModelEntry]:
    """Every registered model."""
    return default_registry().list_models()


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (``ModelError`` listing known names if unknown)."""
    return default_registry().get_entry(name)


def load_segmenter(name: str, device: str = "cpu", progress: Progress | None = None) -> Any:
    """Load the registered model ``name`` on ``device`` (``ModelError`` naming the fix on failure),
    or, when no model has that name, the weights folder ``name`` (a training run's ``best/``, a GPU
    job's ``weights/``): the class its ``config.json`` architecture maps to, unregistered."""
    registry = default_registry()
    if name not in registry.entries and Path(name).is_dir():
        return load_weights_folder(Path(name), device)
    return registry.load_segmenter(name, device, progress)


def architecture_of(weights_dir: Path) -> str:
    """Architecture named in a weights folder's ``config.json`` (our key, or CLIPSeg's ``model_type``)."""
    try:
        cfg = json.loads((Path(weights_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{weights_dir}: no readable {CONFIG_FILE} ({exc})") from exc
    arch = cfg.get("architecture") or (cfg.get("textlesionseg") or {}).get("architecture") or cfg.get("model_type")
    if not arch:
        raise ModelError(f"{weights_dir}/{CONFIG_FILE} names no architecture")
    return str(arch)


def load_weights_folder(path: Path, device: str = "cpu") -> Any:
    """An unregistered weights folder -> a ready segmenter named after the folder (``RUN-best``)."""
    path = Path(path)
    segmenter = default_registry().segmenter_class(architecture_of(path)).from_pretrained(path, resolve_device(device))
    if getattr(segmenter, "name", "") in ("", "best", "last", "weights"):
        segmenter.name = f"{path.parent.name}-{path.name}" if path.name in ("best", "last", "weights") else path.name
    return segmenter


def model_card(name: str) -> dict[str, Any]:
    """Card summary of ``name``."""
    return default_registry().model_card(name)


def weights_status(name: str) -> WeightsStatus:
    """Where the weights of ``name`` are."""
    return default_registry().weights_status(name)


def import_local_weights(name: str, file: Path) -> Path:
    """Put a local weights file of ``name`` into the user cache, verified."""
    return default_registry().import_local_weights(name, file)


def clear_cache(name: str | None = None) -> list[Path]:
    """Delete downloaded weights of one model or all."""
    return default_registry().clear_cache(name)


#: architectures tried first when no model is named, best first (their ``ModelSpec.preference``)
DEFAULT_PREFERENCE: tuple[str, ...] = default_preference()
#: the same order when no description is given: architectures with a prompt-free mode lead
PROMPT_FREE_PREFERENCE: tuple[str, ...] = default_preference(prompt_free=True)


def default_model_name(registry: Registry | None = None, prompt_free: bool = False) -> str:
    """The model used when none is named: the first of :data:`DEFAULT_PREFERENCE`, then any other,
    with usable weights; with ``prompt_free`` the first of :data:`PROMPT_FREE_PREFERENCE`.

    Baselines (e.g. the image-only UNet, which ignores the text) are chosen only when no
    text-guided model is available.
    """
    registry = registry or default_registry()
    order = PROMPT_FREE_PREFERENCE if prompt_free else DEFAULT_PREFERENCE

    def rank(entry: ModelEntry) -> int:
        arch = entry.architecture
        return order.index(arch) if arch in order else len(order)

    for entry in sorted(registry.list_models(), key=rank):  # stable: registry order within a rank
        if registry.weights_status(entry.name).state != "missing":
            return entry.name
    if not registry.entries:
        raise ModelError("no trained model is available yet: the model registry is empty (see 'textlesionseg models')")
    raise ModelError(
        "no trained model is available: the registered models have no weights (see 'textlesionseg models')"
    )
