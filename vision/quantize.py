"""Dynamic int8 quantisation of an exported ONNX tower (weights int8, activations quantised at run time)."""

from __future__ import annotations

from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic


def quantize_int8(source: Path, target: Path) -> None:
    """Quantise the matrix multiplications, where nearly all of a transformer's time goes.

    Per-channel weight scales keep the accuracy loss small; convolutions (the patch
    embedding, one layer) stay in float, which costs little time and keeps the input exact.
    """
    quantize_dynamic(
        model_input=source,
        model_output=target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
