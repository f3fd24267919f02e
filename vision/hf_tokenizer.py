"""Torch-free stand-in for open_clip's `HFTokenizer` (SigLIP-style models), on the `tokenizers` library."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vision.tokenizer import CleanMode, clean_text


class HfTokenizer:
    """Fixed-length int64 token ids from a saved `tokenizer.json`, padded and truncated like open_clip."""

    def __init__(
        self,
        path: Path,
        context_length: int,
        clean: CleanMode = "whitespace",
        pad_id: int = 0,
        strip_sep_id: int | None = None,
    ) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise RuntimeError("this model's tokenizer needs the `tokenizers` package") from exc
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.enable_truncation(max_length=context_length)
        self._tokenizer.enable_padding(length=context_length, pad_id=pad_id)
        self.context_length = context_length
        self._clean = clean
        self._strip_sep_id = strip_sep_id

    def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        encoded = self._tokenizer.encode_batch([clean_text(t, self._clean) for t in texts])
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64).reshape(len(texts), self.context_length)
        if self._strip_sep_id is not None:
            ids[ids == self._strip_sep_id] = 0
        return ids
