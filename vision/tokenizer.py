"""CLIP's byte-level BPE tokenizer without torch, for the ONNX serving path.

Implements the algorithm of OpenAI CLIP's `SimpleTokenizer` (as open_clip ships it, with
the default 'lower' cleaning and plain truncation) on NumPy, reading the same merges file
that the model export copies next to the ONNX files. Parity with open_clip is a test.
"""

from __future__ import annotations

import gzip
import html
import itertools
import string
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import ftfy
import numpy as np
import regex

_SOT = "<start_of_text>"
_EOT = "<end_of_text>"
_N_MERGES = 49152 - 256 - 2


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """Reversible map from bytes to printable unicode characters (GPT-2 / CLIP convention)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


_PUNCTUATION = str.maketrans("", "", string.punctuation)
CleanMode = Literal["lower", "whitespace", "canonicalize"]


def clean_text(text: str, mode: CleanMode = "lower") -> str:
    """open_clip's text cleaning: fix mojibake, unescape HTML twice, squash whitespace, then

    'lower' lowercases (CLIP's default), 'whitespace' keeps case, and 'canonicalize'
    (SigLIP) also drops punctuation, underscores becoming spaces.
    """
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    if mode == "canonicalize":
        text = text.replace("_", " ").translate(_PUNCTUATION).lower()
    text = " ".join(text.split()).strip()
    return text.lower() if mode == "lower" else text


class ClipTokenizer:
    """Text to fixed-length int64 token ids, identical to open_clip's default tokenizer."""

    def __init__(self, merges_path: Path, context_length: int = 77, vocab_size: int | None = None) -> None:
        with gzip.open(merges_path) as handle:
            lines = handle.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
        byte_chars = list(_byte_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [_SOT, _EOT]
        self._encoder = {token: index for index, token in enumerate(vocab)}
        self._ranks = {merge: rank for rank, merge in enumerate(merges)}
        self._byte_encoder = _byte_to_unicode()
        self._cache: dict[str, list[str]] = {_SOT: [_SOT], _EOT: [_EOT]}
        self._pattern = regex.compile(
            rf"{_SOT}|{_EOT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE,
        )
        self.context_length = context_length
        self.sot_id = self._encoder[_SOT]
        self.eot_id = self._encoder[_EOT]
        if vocab_size is not None and vocab_size != len(self._encoder):
            raise ValueError(f"tokenizer has {len(self._encoder)} tokens but the model expects {vocab_size}")

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self._pattern.findall(clean_text(text)):
            mapped = "".join(self._byte_encoder[b] for b in word.encode("utf-8"))
            ids.extend(self._encoder[piece] for piece in self._bpe(mapped))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
        """Token ids of shape (N, context_length): SOT, tokens, EOT, zero padding; truncated with EOT last."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = ids
        return out

    def _bpe(self, token: str) -> list[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = set(itertools.pairwise(word))
            best = min(pairs, key=lambda pair: self._ranks.get(pair, float("inf")))
            if best not in self._ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        if len(self._cache) < 100_000:
            self._cache[token] = word
        return word
