"""Vision core: every image enters Vitrine here and leaves as an L2-normalised embedding.

Knows nothing of the index, the catalog or the web. The serving path (decode, preprocess,
ONNX embedders, tokenizer) never imports torch; only export, parity and training code does.
"""

from vision.decode import DecodeLimits, decode_image
from vision.errors import ImageRejected, ModelUnavailable

__all__ = ["DecodeLimits", "ImageRejected", "ModelUnavailable", "decode_image"]
