"""Export an open_clip model to ONNX (image and text towers), quantise to int8, write the manifest.

Imports torch. The result is a folder the ONNX backends serve from without torch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from open_clip.tokenizer import HFTokenizer, SimpleTokenizer, default_bpe

from vision.manifest import (
    IMAGE_INT8_ONNX,
    IMAGE_ONNX,
    TEXT_INT8_ONNX,
    TEXT_ONNX,
    ModelManifest,
    install_folder,
    sha256_file,
)
from vision.open_clip_loader import load_open_clip, preprocess_config_of
from vision.quantize import quantize_int8

OPSET = 17
BPE_VOCAB = "bpe_simple_vocab_16e6.txt.gz"
HF_TOKENIZER = "tokenizer.json"


class _ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values)


class _TextTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids)


def export_model(
    spec: ModelManifest,
    out_dir: Path,
    weights: str | None = None,
    quantize: bool = True,
) -> ModelManifest:
    """Build the model from `spec` (or `weights`), export both towers, and install into `out_dir`.

    Files are written to a temporary sibling folder and moved into place at the end, so an
    interrupted export never leaves a half-written model that looks installed.
    """
    with _quiet_libraries():
        return _export(spec, out_dir, weights, quantize)


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """open_clip and the quantiser log warnings on the root logger that mean nothing to a user here
    ("no pretrained weights" for a random-weights export, "consider pre-processing")."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _export(spec: ModelManifest, out_dir: Path, weights: str | None, quantize: bool) -> ModelManifest:
    model, _, tokenizer = load_open_clip(spec, weights)
    preprocess = preprocess_config_of(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        tokenizer_info = _save_tokenizer(tokenizer, work)
        _export_towers(model, preprocess.image_size, tokenizer_info["context_length"], work)
        if quantize:
            quantize_int8(work / IMAGE_ONNX, work / IMAGE_INT8_ONNX)
            quantize_int8(work / TEXT_ONNX, work / TEXT_INT8_ONNX)
        with torch.no_grad():
            embed_dim = int(model.encode_image(torch.zeros(1, 3, *preprocess.image_size)).shape[-1])
        source = dict(spec.source)
        if weights is not None:
            source = {"kind": "checkpoint", "path": str(Path(weights).resolve()), "was": spec.source}
        manifest = replace(
            spec,
            source=source,
            embed_dim=embed_dim,
            preprocess=preprocess,
            tokenizer=tokenizer_info,
            files={p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()},
        )
        manifest.save(work)
        install_folder(work, out_dir)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export_towers(model: torch.nn.Module, image_size: tuple[int, int], context_length: int, out: Path) -> None:
    pixels = torch.randn(2, 3, *image_size)
    ids = torch.zeros(2, context_length, dtype=torch.long)
    ids[:, 0], ids[:, 1] = 1, 2  # any ids with a clear maximum; the graph pools at argmax
    towers = [
        (_ImageTower(model), pixels, IMAGE_ONNX, "pixel_values", "image_embeds"),
        (_TextTower(model), ids, TEXT_ONNX, "input_ids", "text_embeds"),
    ]
    # The fused attention fast path has no ONNX form; the plain path computes the same thing.
    # The TorchScript exporter is deliberate: its ViT-B-32 graph ran 12% faster in onnxruntime
    # here than the torch.export-based one (41.8 vs 37.2 images/s), so its deprecation notice
    # and the tracer's shape-check warnings are silenced rather than shown on every export.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting aten::index")
            for tower, example, filename, input_name, output_name in towers:
                torch.onnx.export(
                    tower,
                    (example,),
                    str(out / filename),
                    input_names=[input_name],
                    output_names=[output_name],
                    dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                    opset_version=OPSET,
                    dynamo=False,
                )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _save_tokenizer(tokenizer: object, out: Path) -> dict[str, object]:
    """Copy what the torch-free tokenizer needs next to the ONNX files, and describe it."""
    if isinstance(tokenizer, SimpleTokenizer):
        shutil.copyfile(default_bpe(), out / BPE_VOCAB)
        return {"kind": "clip-bpe", "file": BPE_VOCAB, "context_length": int(tokenizer.context_length)}
    if isinstance(tokenizer, HFTokenizer):
        tokenizer.tokenizer.backend_tokenizer.save(str(out / HF_TOKENIZER))
        clean = {v: k for k, v in _CLEAN_NAMES.items()}.get(tokenizer.clean_fn.__name__, "whitespace")
        return {
            "kind": "hf",
            "file": HF_TOKENIZER,
            "context_length": int(tokenizer.context_length),
            "clean": clean,
            "pad_id": int(tokenizer.tokenizer.pad_token_id or 0),
            "strip_sep_id": int(tokenizer.tokenizer.sep_token_id) if tokenizer.strip_sep_token else None,
        }
    raise NotImplementedError(f"tokenizer {type(tokenizer).__name__} cannot be exported for serving yet")


_CLEAN_NAMES = {"canonicalize": "_clean_canonicalize", "lower": "_clean_lower", "whitespace": "_clean_whitespace"}
