"""Where a registered model's weights are, and getting them there safely: shipped folders, the
per-user download cache (downloads, imports, and deleting only what this package made), hashes.

:class:`WeightsStore` is the weights half of ``models.registry.Registry`` (which re-exports this
module's names); the other half reads registry files and loads models. No torch import.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import InputError, ModelError
from .registry_weights import (
    CONFIG_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    Progress,
    check_safetensors_file,
    fetch,
    pickle_message,
    remove_stale_parts,
    sha256_file,
)

if TYPE_CHECKING:
    from .registry import ModelEntry

#: file in every cache folder this package created; :meth:`Registry.clear_cache` deletes only those
CACHE_MARKER = ".textlesionseg-cache-entry"


def plain_name(text: object) -> bool:
    """True when ``text`` can be one folder name: no separator, drive, ``.``/``..``, control character."""
    return (isinstance(text, str) and text == text.strip() and text not in ("", ".", "..")
            and not any(c in text for c in "/\\:") and all(c.isprintable() for c in text))


def mark_cache_folder(folder: Path, kind: str, **info: Any) -> None:
    """Write the marker that says ``folder`` (just created by this package) is ours to delete."""
    record = {"tool": "textlesionseg", "version": __version__, "kind": kind, **info}
    (Path(folder) / CACHE_MARKER).write_text(json.dumps(record), encoding="utf-8")


def is_marked_cache_folder(folder: Path) -> bool:
    """A real folder (not a link) holding a real marker file written by this package."""
    folder, marker = Path(folder), Path(folder) / CACHE_MARKER
    if folder.is_symlink() or not folder.is_dir() or marker.is_symlink() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("tool") == "textlesionseg"
    except (OSError, ValueError, AttributeError):
        return False


def make_cache_folder(folder: Path, kind: str, **info: Any) -> Path:
    """``folder`` (parents too); marked when this call creates it. An existing folder is used as is."""
    folder = Path(folder)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / CACHE_MARKER).exists():
            mark_cache_folder(folder, kind, **info)
    return folder


@dataclass
class CacheCleared:
    """What :meth:`Registry.clear_cache` did: folders removed, and cache folders left because
    they carry no marker (made by an older TextLesionSeg, or not by it)."""

    removed: list[Path]
    unmarked: list[Path]


@dataclass
@dataclass
class WeightsStatus:
    """Where a model's weights are: ``bundled``, ``cached``, ``downloadable`` or ``missing``."""

    state: str
    path: Path | None
    detail: str


class WeightsStore:
    """Weights of registered models (mixed into ``Registry``, which provides ``entries``,
    ``get_entry``, ``check_compatible``, ``cache_dir`` and the ``_verified`` hash memo)."""

    entries: "dict[str, ModelEntry]"
    cache_dir: Path
    _verified: "dict[tuple[str, int, int], str]"

    def _shipped_dir(self, entry: ModelEntry) -> Path | None:
        rel = entry.weights.get("path")
        return (entry.source.parent / rel).resolve() if rel else None

    def cached_dir(self, entry: ModelEntry) -> Path:
        """Cache folder of a downloaded (or imported) model: ``<cache>/<name>-v<version>``, always
        directly inside the cache folder (names are checked when the registry is read, and here)."""
        folder_name = f"{entry.name}-v{entry.version}"
        if not plain_name(entry.name) or not plain_name(str(entry.version)) or not plain_name(folder_name):
            raise ModelError(f"model {entry.name!r} version {entry.version!r} cannot name a cache folder; fix the registry")
        return self.cache_dir / folder_name

    def _entry_folder(self, entry: ModelEntry, kind: str) -> Path:
        """The cache folder of ``entry``, created (and marked) if absent."""
        return make_cache_folder(self.cached_dir(entry), kind, model=entry.name, model_version=entry.version)

    def weights_status(self, name: str) -> WeightsStatus:
        """Whether a model's weights are bundled, cached, downloadable or missing (no hashing)."""
        entry = self.get_entry(name)
        shipped = self._shipped_dir(entry)
        if shipped is not None:
            if (shipped / WEIGHTS_FILE).is_file():
                return WeightsStatus("bundled", shipped, "shipped with the extension")
        cached = self.cached_dir(entry)
        if (cached / WEIGHTS_FILE).is_file() and (cached / CONFIG_FILE).is_file():
            return WeightsStatus("cached", cached, "downloaded or imported into the cache")
        if entry.weights.get("url"):
            return WeightsStatus("downloadable", None, f"downloaded on first use from {entry.weights['url']}")
        where = shipped or cached
        return WeightsStatus(
            "missing", None,
            f"no weights at {where}; train them or import a file with 'textlesionseg models --import {name} FILE'",
        )

    def verify(self, entry: ModelEntry, weights_dir: Path) -> None:
        """Size, format and sha256 of ``model.safetensors`` (and config.json if hashed)."""
        weights = weights_dir / WEIGHTS_FILE
        if not weights.is_file() or not (weights_dir / CONFIG_FILE).is_file():
            raise ModelError(f"weights of '{entry.name}' are incomplete in {weights_dir} (need {WEIGHTS_FILE} + {CONFIG_FILE})")
        check_safetensors_file(weights)
        stat = weights.stat()
        size = entry.weights.get("size")
        fix = self._fix_hint(entry, weights_dir)
        if size is not None and stat.st_size != int(size):
            raise ModelError(
                f"weights of '{entry.name}' are truncated or altered: {stat.st_size} bytes, registry says {size}; {fix}"
            )
        expected = entry.weights.get("sha256")
        if not expected:
            raise ModelError(f"registry entry '{entry.name}' has no sha256; refusing unverified weights")
        key = (str(weights), stat.st_size, stat.st_mtime_ns)
        actual = self._verified.get(key) or sha256_file(weights)
        if actual != expected:
            raise ModelError(f"sha256 mismatch for '{entry.name}' ({weights}): the file was altered or corrupted; {fix}")
        self._verified[key] = actual
        config_sha = entry.weights.get("config_sha256")
        if config_sha and sha256_file(weights_dir / CONFIG_FILE) != config_sha:
            raise ModelError(f"config.json of '{entry.name}' does not match the registry (sha256); {fix}")

    def _fix_hint(self, entry: ModelEntry, weights_dir: Path) -> str:
        if weights_dir.resolve() == self.cached_dir(entry).resolve():
            return f"delete it with 'textlesionseg models --clear-cache {entry.name}' and run again"
        return "reinstall the extension or restore the weights folder"

    def ensure_weights(self, name: str, progress: Progress | None = None) -> Path:
        """Folder holding verified weights of ``name``, downloading them on first use."""
        entry = self.get_entry(name)
        self.check_compatible(entry)
        status = self.weights_status(name)
        if status.state == "missing":
            raise ModelError(f"no trained weights for model '{name}': {status.detail}")
        if status.state == "downloadable":
            self._download(entry, progress)
            status = self.weights_status(name)
        assert status.path is not None
        self.verify(entry, status.path)
        return status.path

    def _download(self, entry: ModelEntry, progress: Progress | None) -> None:
        """Fetch weights (and config) into the cache; a partial or wrong file never stays."""
        url = entry.weights["url"]
        if url.split("?")[0].lower().endswith(PICKLE_SUFFIXES):
            raise ModelError(pickle_message(Path(url)))
        target = self._entry_folder(entry, "download")
        remove_stale_parts(target)
        part = target / f"{WEIGHTS_FILE}.{os.getpid()}.part"
        try:
            fetch(url, part, entry.weights.get("size"), f"Downloading {entry.name}", progress)
            if entry.weights.get("size") is not None and part.stat().st_size != int(entry.weights["size"]):
                raise ModelError(f"download of '{entry.name}' is incomplete ({part.stat().st_size} bytes); try again")
            check_safetensors_file(part)
            if sha256_file(part) != entry.weights.get("sha256"):
                raise ModelError(f"download of '{entry.name}' from {url} failed its sha256 check; refused (try again or tell the model's publisher)")
            config = entry.weights.get("config")
            if config is None and entry.weights.get("config_url"):
                config_part = target / f"{CONFIG_FILE}.{os.getpid()}.part"
                fetch(entry.weights["config_url"], config_part, None, "Downloading config", None)
                config = json.loads(config_part.read_text(encoding="utf-8"))
                config_part.unlink()
            if config is None:
                raise ModelError(f"registry entry '{entry.name}' has a url but no config; fix the registry")
            (target / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
            os.replace(part, target / WEIGHTS_FILE)
        finally:
            for leftover in target.glob(f"*.{os.getpid()}.part"):
                leftover.unlink(missing_ok=True)
            if all(p.name == CACHE_MARKER for p in target.iterdir()):  # nothing but our marker left
                (target / CACHE_MARKER).unlink(missing_ok=True)
                target.rmdir()

    def import_local_weights(self, name: str, file: Path) -> Path:
        """Copy a local ``model.safetensors`` (sites without internet) into the cache, verified."""
        entry = self.get_entry(name)
        file = Path(file)
        if file.is_dir():
            file = file / WEIGHTS_FILE
        if not file.is_file():
            raise ModelError(f"weights file {file} does not exist")
        check_safetensors_file(file)
        if sha256_file(file) != entry.weights.get("sha256"):
            raise ModelError(f"{file} is not the weights of '{name}' {entry.version} (sha256 differs); refused")
        config = entry.weights.get("config")
        source_config = file.with_name(CONFIG_FILE)
        if config is None and not source_config.is_file():
            raise ModelError(f"no {CONFIG_FILE} beside {file} and none in the registry entry of '{name}'")
        target = self._entry_folder(entry, "import")
        if config is not None:
            (target / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        else:
            shutil.copyfile(source_config, target / CONFIG_FILE)
        part = target / f"{WEIGHTS_FILE}.{os.getpid()}.part"
        shutil.copyfile(file, part)
        os.replace(part, target / WEIGHTS_FILE)
        return target

    def clear_cache(self, name: str | None = None) -> list[Path]:
        """Delete downloaded weights (of one model, or all); returns the folders removed.

        Only folders holding this package's marker are deleted (see :meth:`clear_cache_report`).
        """
        return self.clear_cache_report(name).removed

    def clear_cache_report(self, name: str | None = None) -> CacheCleared:
        """Delete the marked cache folders (of model ``name``, or all) and list the unmarked ones left.

        ``name`` must be a registered model (InputError listing them otherwise; a path is never
        followed). Without a name, every folder directly in the cache folder that holds the marker
        goes (downloads, imports, text-embedding caches); foreign files and folders stay. Folders
        without a marker are reported as ``unmarked`` when they look like ours (named after a model
        entry, or holding weights or a marker-less text cache), never deleted.
        """
        if name is not None:
            entry = self.entries.get(name) if isinstance(name, str) else None
            if entry is None:
                known = ", ".join(self.entries) or "none"
                kind = "a registered model name" + ("" if plain_name(name) else ", not a path")
                raise InputError(f"--clear-cache takes {kind}: {name!r} is unknown (known models: {known})")
            folders = [self.cached_dir(entry)]
        else:
            folders = sorted(self.cache_dir.iterdir()) if self.cache_dir.is_dir() else []
        own_names = {f"{e.name}-v{e.version}" for e in self.entries.values()}
        removed, unmarked = [], []
        for folder in folders:
            if folder.is_symlink() or not folder.is_dir():  # a file or a link: never ours
                if name is not None and (folder.is_symlink() or folder.exists()):
                    unmarked.append(folder)
                continue
            if is_marked_cache_folder(folder):
                shutil.rmtree(folder)
                removed.append(folder)
            elif name is not None or folder.name in own_names or (folder / WEIGHTS_FILE).exists() \
                    or folder.name == "text_embeddings":
                unmarked.append(folder)
        return CacheCleared(removed, unmarked)
