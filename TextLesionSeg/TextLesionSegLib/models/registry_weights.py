"""Files of model weights: where downloads go, hashing, refusing pickles, downloading.

Helpers of ``models.registry`` (which re-exports them); no torch import.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path
from typing import Callable

from ..errors import ModelError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: suffixes of pickled checkpoints, refused because unpickling can execute code
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
_CHUNK = 1 << 20

#: (stage, fraction) callback, the same shape as ``models.base.ProgressCallback``
Progress = Callable[[str, "float | None"], None]


def default_cache_dir() -> Path:
    """Per-user folder for downloaded weights (``$TEXTLESIONSEG_CACHE`` wins)."""
    if os.environ.get("TEXTLESIONSEG_CACHE"):
        return Path(os.environ["TEXTLESIONSEG_CACHE"]).expanduser()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "textlesionseg" / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "textlesionseg" / "models"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_safetensors_file(path: Path) -> None:
    """Refuse anything that is not a safetensors file (pickles above all), with the fix."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(pickle_message(path))
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: 8-byte little-endian header length, then a JSON object.
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size:
        return
    # A zip (torch.save since 1.6) or a raw pickle (protocol 2+ starts with 0x80).
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        raise ModelError(pickle_message(path))
    raise ModelError(f"{path} is not a safetensors file (truncated or corrupt); download or import it again")


def pickle_message(path: Path) -> str:
    return (
        f"{path} is a pickled PyTorch checkpoint; only .safetensors weights are accepted (pickles can run code). "
        "Convert it once where you trust it: python -c \"import torch, safetensors.torch as s; "
        "s.save_file(torch.load('IN.pt', weights_only=True), 'model.safetensors')\""
    )


def fetch(url: str, dest: Path, size: int | None, label: str, progress: Progress | None) -> None:
    """Stream ``url`` (http(s) or file://) into ``dest`` with a tqdm bar on stderr."""
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            total = size or int(response.headers.get("Content-Length") or 0) or None
            done = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr, leave=False) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
                    if progress:
                        progress(label, done / total if total else None)
    except OSError as exc:
        raise ModelError(
            f"cannot download {url} ({exc}); check the connection, or import the file with "
            "'textlesionseg models --import NAME FILE'"
        ) from exc


def remove_stale_parts(folder: Path) -> list[Path]:
    """Delete ``*.<pid>.part`` files left by a process that is gone (a download killed by cancel)."""
    removed = []
    for part in Path(folder).glob("*.part"):
        try:
            pid = int(part.suffixes[-2].lstrip("."))
        except (IndexError, ValueError):
            pid = -1
        if pid > 0 and pid != os.getpid() and process_alive(pid):
            continue  # another process is downloading right now
        part.unlink(missing_ok=True)
        removed.append(part)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (True when it exists but is another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else (Windows raises OSError for most cases)
    return True
